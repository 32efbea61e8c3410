from emofactory.models.triton_python import triton_model

TritonPythonModel = triton_model("facial_emotion")
