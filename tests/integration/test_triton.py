"""Models on a real Triton server (the `tritonserver` nvidia-pytriton bundles, on the CPU, from
Triton's own venv) with deploy/triton/models: the same numbers as in-process, clear failures, and
the whole pipeline with models.backend=triton."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from skimage import data

from dev.assets import SER_WEIGHTS
from dev.triton import TritonServer
from emofactory.core.channels import open_channel
from emofactory.core.config import ModelsConfig, StoreConfig, config_digest
from emofactory.core.errors import PermanentError, TransientError
from emofactory.core.media import read_pcm
from emofactory.core.store import ObjectStore
from emofactory.core.video import probe
from emofactory.local import LocalStack
from emofactory.models.backends import InProcessBackend, RoutedBackend, backend_for, model_routes
from emofactory.models.registry import LOADERS
from emofactory.models.triton_python import models_config, run_batched
from emofactory.stages.asr.config import AsrConfig
from emofactory.stages.asr.engines import make_engine
from emofactory.stages.asr.transcribe import transcribe_segments
from emofactory.stages.labeler.config import LabelerConfig
from emofactory.stages.labeler.labels import label_segments
from emofactory.stages.vision.analysis import analyze_video
from emofactory.stages.vision.config import VisionConfig
from emofactory.v1 import common_pb2, ingest_pb2_grpc, labeler_pb2
from tests.helpers import JFK, describe, pcm16k, submit, wait_job, word_errors
from tests.models import tiny_audio_classifier, tiny_image_classifier, tiny_text_classifier

SER = SER_WEIGHTS
# Same code and weights on both sides; Triton's venv has NumPy 1.x, whose float promotion differs
# in the audio features' last bits (3e-5 measured). Everything else came out bit-identical.
ATOL = 1e-4


@pytest.fixture(scope="module")
def triton(tmp_path_factory):
    """Not started: the pipeline test starts it late, the others through `triton_up`."""
    env = {"EMO_MODELS__SPEECH_EMOTION_PATH": str(SER)} if SER.is_file() else {}
    models = None if SER.is_file() else ("face_detector", "facial_emotion", "text_emotion", "whisper")
    server = TritonServer(tmp_path_factory.mktemp("triton"), models, env=env)
    yield server
    server.stop()


@pytest.fixture
def triton_up(triton):
    if not (triton.proc and triton.proc.poll() is None):
        triton.start()
    return triton


def backends(triton, **settings):
    inprocess = backend_for(ModelsConfig(speech_emotion_path=str(SER) if SER.is_file() else "", **settings))
    on_triton = backend_for(ModelsConfig(backend="triton", triton_url=triton.url, **settings))
    return inprocess, on_triton


def test_the_pipeline_runs_on_triton_and_waits_for_it(triton, tmp_path, stack, http_server, speech_sample):
    """Triton is down when the job starts: vision retries (clear transient errors, no failure), then
    Triton comes up and the job finishes with the labels the in-process stack gives."""
    triton.stop()
    env = {
        **{k: v for k, v in stack.extra_env.items() if not k.startswith("EMO_MODELS__")},
        "EMO_MODELS__BACKEND": "triton",
        "EMO_MODELS__TRITON_URL": triton.url,
        "EMO_MODELS__TRITON_RETRIES": "2",
        "EMO_MODELS__TRITON_BACKOFF_S": "0.5",
        # Redeliveries over about 50 s: Triton takes 14 s to load the models here when idle, and
        # more while the stack runs beside it.
        "EMO_BUS__NAK_DELAYS_S": "4,8,16,24",
    }
    source = common_pb2.Source(url=f"{http_server}/{speech_sample[0].name}")
    # sphinx: Whisper on Triton may differ from in-process by a word at the margins (its own test
    # bounds that), and one word of text moves the fused label; the labels must agree exactly here.
    sphinx = common_pb2.AsrOptions(engine="sphinx")
    with LocalStack(tmp_path / "stack", env=env, topology=stack.topology) as on_triton:
        with open_channel(on_triton.address("ingest"), on_triton.client_config()) as channel:
            ingest = ingest_pb2_grpc.IngestServiceStub(channel)
            job_id = submit(ingest, on_triton, source, asr=sphinx)
            deadline = time.monotonic() + 60
            while "unavailable" not in on_triton.log_tail("vision", 200) and time.monotonic() < deadline:
                time.sleep(0.5)
            log = on_triton.log_tail("vision", 200)
            assert f"triton at {triton.url} unavailable" in log, log
            triton.start()
            job = wait_job(ingest, on_triton, job_id, timeout=120)
        assert job.state == common_pb2.JOB_STATE_SUCCEEDED, describe(job) + on_triton.log_tail("vision")
        triton_labels = labels_of(on_triton, job.videos[0].video_id)
    with open_channel(stack.address("ingest")) as channel:
        ingest = ingest_pb2_grpc.IngestServiceStub(channel)
        reference = wait_job(ingest, stack, submit(ingest, stack, source, asr=sphinx))
    assert reference.videos[0].video_id == job.videos[0].video_id
    inprocess_labels = labels_of(stack, reference.videos[0].video_id)
    assert len(triton_labels["labels"]) == len(speech_sample[1])
    assert_close(triton_labels["labels"], inprocess_labels["labels"])


def labels_of(stack: LocalStack, video_id: str) -> dict:
    env = stack.env()
    store = ObjectStore(
        StoreConfig(
            endpoint=env["EMO_STORE__ENDPOINT"],
            access_key=env["EMO_STORE__ACCESS_KEY"],
            secret_key=env["EMO_STORE__SECRET_KEY"],
            bucket=env["EMO_STORE__BUCKET"],
        )
    )
    (key,) = store.list_keys(f"{video_id}/labeler/{config_digest(LabelerConfig())}/labels-")
    return json.loads(store.get_bytes(store.ref(key)))


def why(reason: str) -> str:
    """A reason without its detail: a missing model is "not configured" in-process and "not found"
    on a Triton that does not serve it."""
    return reason.split(":")[0]


def assert_close(a, b, path="labels"):
    """Equal structure and values, numbers within ATOL, reasons up to their detail."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            assert_close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=ATOL), path
    elif isinstance(a, str) and ".reasons[" in path:
        assert why(a) == why(b), path
    else:
        assert a == b, path


def test_vision_gives_the_same_faces_and_emotions_on_triton(triton_up, speech_sample):
    video, truth = speech_sample
    segments = [common_pb2.Segment(segment_id=f"s{i}", start_s=p.start_s, end_s=p.end_s) for i, p in enumerate(truth)]
    config = VisionConfig(fps=2)
    runs = [analyze_video(str(video), probe(video), segments, config, b) for b in backends(triton_up)]
    for here, there in zip(*runs):
        assert len(here.frames) == len(there.frames) > 0
        assert [f.faces for f in here.frames] == [f.faces for f in there.frames]
        for f, g in zip(here.frames, there.frames):
            np.testing.assert_allclose(f.box, g.box, atol=ATOL)
            np.testing.assert_allclose(f.probs, g.probs, atol=ATOL)


def test_labeler_gives_the_same_text_and_audio_scores_on_triton(triton_up, speech_sample):
    video, truth = speech_sample
    pcm, rate = read_pcm(video.with_suffix(".wav"))
    texts = ["I am so happy to see you", "", "this is terrible, I hate it", "the meeting is on tuesday"]
    evidence = [
        labeler_pb2.SegmentEvidence(
            segment=common_pb2.Segment(segment_id=f"s{i}", start_s=p.start_s, end_s=p.end_s), transcript=t, face_ratio=1
        )
        for i, (p, t) in enumerate(zip(truth, texts))
    ]
    config = LabelerConfig(modalities=("text", "audio"))
    here, there = (label_segments(evidence, pcm, rate, config, b) for b in backends(triton_up))
    for a, b in zip(here, there):
        for modality in ("text", "audio"):
            x, y = getattr(a, modality), getattr(b, modality)
            np.testing.assert_allclose(
                [getattr(x, f.name) for f in x.DESCRIPTOR.fields if f.type == f.TYPE_FLOAT],
                [getattr(y, f.name) for f in y.DESCRIPTOR.fields if f.type == f.TYPE_FLOAT],
                atol=ATOL,
            )
        assert (a.label.emotion, a.label.kept) == (b.label.emotion, b.label.kept)
        assert [why(r) for r in a.label.reasons] == [why(r) for r in b.label.reasons]
        assert a.label.confidence == pytest.approx(b.label.confidence, abs=ATOL)
    assert here[0].HasField("text") and not here[1].HasField("text")
    if SER.is_file():
        assert all(x.HasField("audio") for x in there)


def test_whisper_gives_the_same_transcripts_on_triton(triton_up, assets):
    """Three spans of JFK's speech, of three lengths, in flight together (ragged, never padded): the
    same words and word times as in-process, up to one word per span, most times within three of
    Whisper's 20 ms steps and none by more than 0.4 s (Triton's NumPy 1.x computes the log-mel
    features to other last bits, 1e-7, which can flip a word the model is unsure of, or give the
    pause before a word to that word or the one before: 1e-6 of noise moves the start of JFK's "my",
    after "so,", from 1.18 to 1.36 s in-process); a language no installed model covers is refused per
    clip with the model's reason."""
    pcm = pcm16k(assets / "speech_en" / "faster_whisper_jfk.flac")
    spans = [(0.0, len(pcm) / 16000), (0.0, 8.2), (7.9, len(pcm) / 16000)]
    segments = [common_pb2.Segment(segment_id=f"s{i}", start_s=a, end_s=b) for i, (a, b) in enumerate(spans)]
    engines = [make_engine(AsrConfig(engine="whisper"), b) for b in backends(triton_up)]
    here, there = (transcribe_segments(pcm, 16000, "vtest", segments, "en-US", e, AsrConfig()) for e in engines)
    assert word_errors(JFK, "".join(c for c in there[0].text.lower() if c.isalpha() or c.isspace())) <= 1
    for a, b, (start, end) in zip(here, there, spans):
        assert not b.failed and b.words and word_errors(a.text.lower(), b.text) <= 1, (a.text, b.text)
        assert start - 0.05 <= b.words[0].start_s and b.words[-1].end_s <= end + 0.05
        if a.text == b.text:
            moved = np.abs(np.subtract([w.start_s for w in a.words], [w.start_s for w in b.words]))
            assert np.median(moved) <= 0.06 and moved.max() <= 0.4, moved
    (unknown,) = transcribe_segments(pcm, 16000, "vtest", segments[:1], "zz-ZZ", engines[1], AsrConfig())
    assert unknown.failed and "whisper" in unknown.failure_reason and "covers language 'zz'" in unknown.failure_reason


def test_models_users_bring_give_the_same_scores_on_triton(tmp_path):
    """transformers folders (image, audio, text classification) on a Triton pointed at them by
    EMO_MODELS__*: the same canonical probabilities as in-process, batches and ragged clips included."""
    settings = {
        "facial_emotion_path": str(tiny_image_classifier(tmp_path / "vit")),
        "speech_emotion_path": str(tiny_audio_classifier(tmp_path / "w2v")),
        "text_emotion_path": str(tiny_text_classifier(tmp_path / "bert")),
    }
    env = {f"EMO_MODELS__{name.upper()}": value for name, value in settings.items()}
    server = TritonServer(tmp_path / "triton", ("facial_emotion", "speech_emotion", "text_emotion"), env=env)
    server.start()
    try:
        here = InProcessBackend(ModelsConfig(**settings), LOADERS)
        there = backend_for(ModelsConfig(backend="triton", triton_url=server.url))
        rng = np.random.RandomState(3)
        faces = {"faces": rng.randint(0, 255, (5, 112, 112, 3)).astype(np.uint8)}
        texts = {"texts": np.array([b"i am so happy", b"so sad", b"i"], dtype=object)}
        clips = [
            {"audio": rng.uniform(-0.5, 0.5, (1, n)).astype(np.float32), "sample_rate": np.array([[r]], np.int32)}
            for n, r in ((48000, 48000), (20000, 16000), (30000, 44100))
        ]
        for model, inputs in (("facial_emotion", faces), ("text_emotion", texts)):
            a, b = here.infer(model, inputs)["probabilities"], there.infer(model, inputs)["probabilities"]
            np.testing.assert_allclose(a, b, atol=ATOL, err_msg=model)
        for a, b in zip(here.infer_each("speech_emotion", clips), there.infer_each("speech_emotion", clips)):
            np.testing.assert_allclose(a["probabilities"], b["probabilities"], atol=ATOL)
    finally:
        server.stop()


def test_big_batches_are_split_to_the_model_limit_and_joined(triton_up):
    inprocess, on_triton = backends(triton_up)
    faces = np.random.RandomState(0).randint(0, 255, (300, 48, 48, 3)).astype(np.uint8)  # max_batch_size 128
    np.testing.assert_allclose(
        on_triton.infer("facial_emotion", {"faces": faces})["probabilities"],
        inprocess.infer("facial_emotion", {"faces": faces})["probabilities"],
        atol=ATOL,
    )
    frames = np.stack([data.astronaut()[::2, ::2]] * 20)  # max_batch_size 16
    found = on_triton.infer("face_detector", {"images": frames})
    assert found["scores"].shape[0] == 20 and (found["scores"].max(axis=1) > 0.99).all()


def test_a_request_the_model_rejects_is_a_permanent_error_naming_it(triton_up):
    _, on_triton = backends(triton_up)
    with pytest.raises(PermanentError, match="face_detector.*images"):
        on_triton.infer("face_detector", {"images": np.zeros((2, 10, 10), np.uint8)})
    with pytest.raises(PermanentError, match="unknown model: 'wav2vec2'"):
        on_triton.infer("wav2vec2", {"audio": np.zeros((1, 16000), np.float32)})


def test_an_unreachable_triton_is_a_retried_transient_error():
    config = ModelsConfig(backend="triton", triton_url="127.0.0.1:9", triton_retries=2, triton_backoff_s=0.2)
    start = time.monotonic()
    with pytest.raises(TransientError, match=r"triton at 127.0.0.1:9 unavailable .* after 3 attempts"):
        backend_for(config).infer("face_detector", {"images": np.zeros((1, 8, 8, 3), np.uint8)})
    assert time.monotonic() - start >= 0.2 + 0.4  # backed off between the attempts


def test_models_are_routed_per_model():
    config = ModelsConfig(model_backends=("face_detector=triton", "facial_emotion = triton"))
    assert model_routes(config) == {"face_detector": "triton", "facial_emotion": "triton"}
    routed = backend_for(config)
    assert isinstance(routed, RoutedBackend) and set(routed.routes) == {"face_detector", "facial_emotion"}
    assert type(routed.routes["face_detector"]).__name__ == "TritonBackend"
    assert type(routed.default).__name__ == "InProcessBackend"
    with pytest.raises(PermanentError, match="model=inprocess|triton"):
        backend_for(ModelsConfig(model_backends=("face_detector:gpu",)))
    with pytest.raises(PermanentError, match="must be one of inprocess, triton"):
        backend_for(ModelsConfig(backend="onnx"))


def test_repository_parameters_are_relative_to_the_version_folder_and_env_wins(tmp_path):
    params = {"speech_emotion_path": "ser_cnn.h5", "text_temperature": "0.1"}
    config = models_config(params, tmp_path / "1", "cpu", {})
    assert config.speech_emotion_path == str(tmp_path / "1" / "ser_cnn.h5") and config.text_temperature == 0.1
    config = models_config(params, tmp_path / "1", "cuda:0", {"EMO_MODELS__SPEECH_EMOTION_PATH": "/mnt/ser.h5"})
    assert config.speech_emotion_path == "/mnt/ser.h5" and config.device == "cuda:0"
    with pytest.raises(ValueError, match="unknown setting 'weights'"):
        models_config({"weights": "x"}, tmp_path, "cpu", {})


def test_requests_of_different_shapes_run_apart_and_errors_stay_with_their_group():
    calls = []

    def run(batch):
        calls.append(batch["audio"].shape)
        if batch["audio"].shape[1] == 3:
            raise ValueError("too short")
        return {"logits": batch["audio"].sum(axis=1, keepdims=True)}

    inputs = [{"audio": np.ones((1, n), np.float32)} for n in (5, 3, 5, 7)]
    results = run_batched(run, inputs)
    assert sorted(calls) == [(1, 3), (1, 7), (2, 5)]  # the two 5-sample clips shared one call
    assert [r["logits"][0, 0] for r in (results[0], results[2], results[3])] == [5, 5, 7]
    assert isinstance(results[1], ValueError)
