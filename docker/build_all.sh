#!/usr/bin/env bash
# Build the base images and component images, all from the repository root, as the specs name them.
#
#   docker/build_all.sh                      every component (and the bases they need)
#   docker/build_all.sh ID...                only these components, e.g. predict_modality/methods/knn_regression
#   docker/build_all.sh --offline [ID...]    no network inside builds: wheels are downloaded here into
#                                            docker/wheelhouse first, builds run with --network none
#   docker/build_all.sh --registry R [--tag T] [--push] [ID...]
#                                            also name each image R/<name>:T (the workflow's
#                                            --container_registry R --container_tag T) and push it
#
# PYTHON_IMAGE picks the image the base starts from (default python:3.11-slim); ENGINE=podman works too.
# Needs scmib installed here (pip install -e .) to read the specs.
set -euo pipefail
cd "$(dirname "$0")/.."
engine="${ENGINE:-docker}"
offline=0
registry=""
tag=""
push=0
while (($#)); do
  case "$1" in
    --offline) offline=1 ;;
    --registry) registry="${2:?--registry needs a value}"; shift ;;
    --tag) tag="${2:?--tag needs a value}"; shift ;;
    --push) push=1 ;;
    --*) echo "build_all.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
if ((push)) && [[ -z "$registry" ]]; then
  echo "build_all.sh: --push needs --registry" >&2
  exit 2
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
  if [[ -n "$registry" ]]; then
    # ghcr.io/scmib/<name>:<version> -> <registry>/<name>:<tag>, as scmib.containers.image_ref names it.
    name="${image%:*}"
    target="${registry%/}/${name#ghcr.io/scmib/}:${tag:-${image##*:}}"
    "$engine" tag "$image" "$target"
    if ((push)); then
      "$engine" push "$target"
    fi
  fi
done
