#!/usr/bin/env bash
# Start a Docker engine for the container test, if this machine allows one.
# Source it: on success it exports SCMIB_DOCKER_TESTS=1, ENGINE and SCMIB_TEST_PYTHON_IMAGE.
#
# Images build with no network (docker/build_all.sh --offline), so the engine needs none either: it
# runs without bridge or iptables. With no Docker Hub to pull python:3.11-slim from, the base
# Python image is Debian bookworm's (Python 3.11) made with debootstrap from Debian's packages.
set -uo pipefail

scmib_docker_log="${TMPDIR:-/tmp}/scmib-dockerd.log"

scmib_start_docker() {
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null || return 1
  fi
  if ! /usr/bin/docker info >/dev/null 2>&1; then
    (dockerd --iptables=false --bridge=none >"$scmib_docker_log" 2>&1 &)
    for _ in $(seq 30); do
      /usr/bin/docker info >/dev/null 2>&1 && break
      sleep 1
    done
    /usr/bin/docker info >/dev/null 2>&1 || return 1
  fi
  if ! /usr/bin/docker image inspect scmib/debian-python:bookworm >/dev/null 2>&1; then
    local rootfs
    rootfs="$(mktemp -d)"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$rootfs" http://deb.debian.org/debian >/dev/null || return 1
    tar -C "$rootfs" -c . | /usr/bin/docker import - scmib/debian-python:bookworm >/dev/null || return 1
    rm -rf "$rootfs"
  fi
}

if scmib_start_docker; then
  # Debian's client builds with BuildKit (RUN --mount) without the buildx plugin.
  export SCMIB_DOCKER_TESTS=1 ENGINE=/usr/bin/docker SCMIB_TEST_PYTHON_IMAGE=scmib/debian-python:bookworm
  echo "Docker engine running: the container test builds and runs an image"
else
  echo "WARNING: no Docker engine could start here (see $scmib_docker_log); the container test is skipped"
fi
