#!/usr/bin/env bash
# Builds the emofactory image with buildah (or podman) from the repository root:
#   deploy/docker/build.sh [TAG]      e.g. deploy/docker/build.sh registry.example.com/emofactory:0.1.0
# Environment (all optional):
#   BASE=python:3.11.7-slim-bookworm@sha256:...   the base image, pinned by digest
#   TORCH_INDEX=https://download.pytorch.org/whl/cu130   a CUDA torch instead of the CPU one
#   PIP_CONF=/etc/pip.conf PIP_CA=/path/ca.pem    a pip mirror and its CA, passed as build secrets
#                                                 (never stored in a layer)
#   EXTRA_ARGS="-v /opt/wheels:/opt/wheels:ro"     more build options, e.g. the local index folders a
#                                                 pip configuration names
set -euo pipefail
cd "$(dirname "$0")/../.."
tag="${1:-emofactory:dev}"
args=(-f deploy/docker/Dockerfile -t "$tag")
[ -n "${BASE:-}" ] && args+=(--build-arg "BASE=$BASE")
[ -n "${TORCH_INDEX:-}" ] && args+=(--build-arg "TORCH_INDEX=$TORCH_INDEX")
[ -n "${PIP_CONF:-}" ] && args+=(--secret "id=pipconf,src=$PIP_CONF")
[ -n "${PIP_CA:-}" ] && args+=(--secret "id=ca,src=$PIP_CA")
# shellcheck disable=SC2206 # EXTRA_ARGS is a list of options, split on purpose
args+=(${EXTRA_ARGS:-})
if command -v buildah >/dev/null; then
  buildah bud --layers "${args[@]}" .
elif command -v podman >/dev/null; then
  podman build "${args[@]}" .
else
  echo "needs buildah or podman (apt-get install buildah podman runc)" >&2
  exit 1
fi
echo "built $tag; each service runs as: <image> emofactory.serve <name> (ingest, audio, vad, vision, asr, labeler, catalog)"
