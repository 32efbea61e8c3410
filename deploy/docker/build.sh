#!/usr/bin/env bash
# Builds the services' images with buildah (or podman) from the repository root, one per service,
# each without what only the others load (deploy/docker/services.py):
#   deploy/docker/build.sh [TAG]      e.g. deploy/docker/build.sh registry.example.com/emofactory:0.1.0
#                                     -> registry.example.com/emofactory-vision:0.1.0, ...-asr:0.1.0, ...
# `make image` runs it. Environment (all optional):
#   SERVICES="vision asr"                         only these services' images
#   SERVICES=all                                  one image holding every service, tagged TAG
#   BASE=python:3.11.7-slim-bookworm@sha256:...   the base image, pinned by digest. Unset: the
#                                                 Dockerfile's, or, where no registry can be reached,
#                                                 a Debian bookworm base made here with debootstrap
#                                                 (LOCAL_BASE, below)
#   TORCH_INDEX=https://download.pytorch.org/whl/cu130   a CUDA torch instead of the CPU one
#   PIP_CONF=/etc/pip.conf PIP_CA=/path/ca.pem    a pip mirror and its CA, passed as build secrets
#                                                 (never stored in a layer)
#   EXTRA_ARGS="-v /opt/wheels:/opt/wheels:ro"     more build options, e.g. the local index folders a
#                                                 pip configuration names
set -euo pipefail
cd "$(dirname "$0")/../.."
tag="${1:-emofactory:dev}"
LOCAL_BASE="${LOCAL_BASE:-localhost/emofactory-base:bookworm}"

if command -v buildah >/dev/null; then
  build=(buildah bud --layers) images=(buildah images) pull=(buildah pull -q) import=(buildah import)
elif command -v podman >/dev/null; then
  build=(podman build) images=(podman images) pull=(podman pull -q) import=(podman import)
else
  echo "needs buildah or podman (apt-get install buildah podman runc)" >&2
  exit 1
fi
[ "${build[0]}" = podman ] || import=(podman import)  # buildah has no import; podman shares its storage

# A minimal Debian bookworm with Python 3.11, as the slim Python base has it, from Debian's archive.
local_base() {
  "${images[@]}" "$LOCAL_BASE" >/dev/null 2>&1 && return
  command -v debootstrap >/dev/null || { echo "needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
  rootfs="$(mktemp -d)"
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
    bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  tar -C "$rootfs" -c . | "${import[@]}" - "$LOCAL_BASE" >/dev/null
  echo "made $LOCAL_BASE with debootstrap"
}

args=(-f deploy/docker/Dockerfile)
if [ -z "${BASE:-}" ]; then
  default_base="$(sed -n 's/^ARG BASE=//p' deploy/docker/Dockerfile)"
  if ! "${pull[@]}" "$default_base" >/dev/null 2>&1; then
    echo "cannot pull $default_base: building on a local Debian base" >&2
    local_base
    BASE="$LOCAL_BASE"
  fi
fi
[ -n "${BASE:-}" ] && args+=(--build-arg "BASE=$BASE")
[ -n "${TORCH_INDEX:-}" ] && args+=(--build-arg "TORCH_INDEX=$TORCH_INDEX")
[ -n "${PIP_CONF:-}" ] && args+=(--secret "id=pipconf,src=$PIP_CONF")
[ -n "${PIP_CA:-}" ] && args+=(--secret "id=ca,src=$PIP_CA")
# shellcheck disable=SC2206 # EXTRA_ARGS is a list of options, split on purpose
args+=(${EXTRA_ARGS:-})
services="${SERVICES:-ingest audio vad vision asr labeler catalog}"
if [ "$services" = all ]; then
  "${build[@]}" "${args[@]}" -t "$tag" .
  echo "built $tag ($("${images[@]}" --format '{{.Size}}' "$tag" | head -1)); each service runs as:"
  echo "  <image> emofactory.serve <name>   (each stage of emofactory.pipeline; the chart runs them all)"
  exit 0
fi
repo="${tag%:*}" version="${tag##*:}"
[ "$repo" != "$tag" ] || version=latest
for service in $services; do
  "${build[@]}" "${args[@]}" --build-arg "SERVICE=$service" -t "$repo-$service:$version" .
done
for service in $services; do  # the chart's image.perService takes them by these names
  echo "built $repo-$service:$version ($("${images[@]}" --format '{{.Size}}' "$repo-$service:$version" | head -1))"
done
