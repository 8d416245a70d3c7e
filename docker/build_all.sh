#!/usr/bin/env bash
# Build the base images and component images, all from the repository root, as the specs name them.
#
#   docker/build_all.sh                      every component (and the bases they need)
#   docker/build_all.sh ID...                only these components, e.g. predict_modality/methods/knn_regression
#   docker/build_all.sh --offline [ID...]    no network inside builds: wheels are downloaded here into
#                                            docker/wheelhouse first, builds run with --network none
#
# PYTHON_IMAGE picks the image the base starts from (default python:3.11-slim); ENGINE=podman works too.
# Needs scmib installed here (pip install -e .) to read the specs.
set -euo pipefail
cd "$(dirname "$0")/.."
engine="${ENGINE:-docker}"
offline=0
if [[ "${1:-}" == "--offline" ]]; then
  offline=1
  shift
fi

build=("$engine" build --build-arg "PYTHON_IMAGE=${PYTHON_IMAGE:-python:3.11-slim}")
if ((offline)); then
  mapfile -t extra < <(scmib images --pip-requirements "$@")
  python -m pip download --quiet --dest docker/wheelhouse "setuptools>=77" wheel . "${extra[@]}"
  build+=(--network none --build-arg PIP_NO_INDEX=1)
fi

# RUN --mount (the wheelhouse) needs BuildKit.
export DOCKER_BUILDKIT=1
scmib images "$@" | while read -r dockerfile image; do
  echo "== $image ($dockerfile)"
  "${build[@]}" -f "$dockerfile" -t "$image" .
done
