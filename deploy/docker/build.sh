#!/usr/bin/env bash
# Builds the emofactory image with buildah (or podman) from the repository root:
#   deploy/docker/build.sh [TAG]      e.g. deploy/docker/build.sh registry.example.com/emofactory:0.1.0
# Needs the base image python:3.11.7-slim-bookworm reachable (or pre-imported) and the network for pip.
set -euo pipefail
cd "$(dirname "$0")/../.."
tag="${1:-emofactory:dev}"
if command -v buildah >/dev/null; then
  buildah bud --layers -f deploy/docker/Dockerfile -t "$tag" .
elif command -v podman >/dev/null; then
  podman build -f deploy/docker/Dockerfile -t "$tag" .
else
  echo "needs buildah or podman (apt-get install buildah podman runc)" >&2
  exit 1
fi
echo "built $tag; each service runs as: <image> emofactory.serve <name> (ingest, audio, vad, vision, asr, labeler, catalog)"
