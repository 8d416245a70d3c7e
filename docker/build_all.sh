#!/usr/bin/env bash
# Build the base image, then every component's image as its spec names it.
# Usage: docker/build_all.sh   (ENGINE=podman to use podman; needs scmib installed for the specs)
set -euo pipefail
cd "$(dirname "$0")/.."
engine="${ENGINE:-docker}"

"$engine" build -f docker/base/Dockerfile -t ghcr.io/scmib/base:0.1.0 .
python - <<'PY' | while read -r folder image; do "$engine" build -t "$image" "$folder"; done
from pathlib import Path

from scmib.spec import discover

for spec in discover(Path("components")):
    print(spec.folder, f"{spec.container.image}:{spec.container.tag}")
PY
