from emofactory.models.triton_python import triton_model

TritonPythonModel = triton_model("face_detector")
