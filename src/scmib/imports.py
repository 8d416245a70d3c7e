"""What a component's script imports, directly or through scmib's own modules, against what its
container image has: the scmib runtime of its base image, the base's additions (torch, scvi-tools)
and its ``requirements.python``, each with everything pip installs along with it.

A script that imports a package its spec does not declare runs in a development environment that
happens to have it and fails only in its container, in CI or under Nextflow; ``scmib lint`` says so
before. scmib's own modules are followed through the imports that run when they are imported (not
those inside functions or under ``TYPE_CHECKING``) and those inside the functions the script imports
from them (and the module's functions those call); the script's own imports all of them.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

#: The folder of the ``scmib`` package, whose modules are followed.
PACKAGE_DIR = Path(__file__).resolve().parent


def _module_file(name: str) -> Path | None:
    """The file of scmib module ``name`` (``scmib.methods.lsl_ae``), or None if there is none."""
    where = PACKAGE_DIR.joinpath(*name.split(".")[1:])
    for path in (where.with_suffix(".py"), where / "__init__.py"):
        if path.is_file():
            return path
    return None


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return isinstance(test, ast.Name | ast.Attribute) and ast.unparse(test).endswith("TYPE_CHECKING")


def _import_nodes(tree: ast.AST, every: bool) -> list[ast.Import | ast.ImportFrom]:
    """The import statements of a module: all of them with ``every``, else those that run when it
    is imported (outside functions and ``if TYPE_CHECKING``)."""
    found, pending = [], [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        skip = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) or _is_type_checking(
            node
        )
        if every or not skip:
            pending.extend(ast.iter_child_nodes(node))
    return found


def _module_names(nodes: list[ast.Import | ast.ImportFrom]) -> set[str]:
    """Dotted names of the modules imported (``from a import b``: ``a.b`` where that is a scmib
    module, else ``a``)."""
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif node.module and not node.level:  # scmib imports absolutely; a script has no package
            names.add(node.module)
            names |= {
                f"{node.module}.{a.name}" for a in node.names if _module_file(f"{node.module}.{a.name}")
            }
    return names


def _parse(path: Path) -> ast.Module:
    """A module's syntax tree, read once per version of the file (lint reads scmib's modules for
    every script)."""
    stat = path.stat()
    return _parse_version(path, stat.st_mtime_ns, stat.st_size)


@cache
def _parse_version(path: Path, mtime_ns: int, size: int) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imported_modules(path: Path, every: bool) -> set[str]:
    """The modules the file at ``path`` imports (see :func:`_import_nodes`)."""
    return _module_names(_import_nodes(_parse(path), every))


def _used_functions_imports(path: Path, used: set[str]) -> set[str]:
    """The modules imported inside the functions ``used`` of the scmib module at ``path`` (a
    script's ``from scmib.x import f``: the imports ``f`` keeps inside, scvi-tools for one) and
    inside the module's functions they call, transitively."""
    functions = {
        node.name: node
        for node in _parse(path).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    pending, seen, names = [f for f in used if f in functions], set(), set()
    while pending:
        if (name := pending.pop()) in seen:
            continue
        seen.add(name)
        names |= _module_names(_import_nodes(functions[name], every=True))
        calls = {
            n.func.id
            for n in ast.walk(functions[name])
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        }
        pending += [called for called in calls if called in functions]
    return names


def _names_from_scmib(path: Path) -> dict[str, set[str]]:
    """``{module: names}`` of the script's ``from scmib.x import name`` statements."""
    found: dict[str, set[str]] = {}
    for node in _import_nodes(_parse(path), every=True):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "scmib":
            found.setdefault(node.module, set()).update(alias.name for alias in node.names)
    return found


def third_party_imports(script: Path) -> dict[str, list[str]]:
    """Top-level modules outside scmib and the standard library that running ``script`` imports,
    each with the chain of scmib modules it is imported through (empty: the script itself)."""
    found: dict[str, list[str]] = {}
    pending: list[tuple[str, list[str]]] = [(name, []) for name in sorted(_imported_modules(script, True))]
    for module, names in sorted(_names_from_scmib(script).items()):
        if (path := _module_file(module)) is not None:
            pending += [(n, [module]) for n in sorted(_used_functions_imports(path, names))]
    seen: set[str] = set()
    while pending:
        name, chain = pending.pop(0)
        top = name.split(".")[0]
        if top == "scmib":
            # Importing scmib.a.b runs scmib/__init__.py and scmib/a/__init__.py first.
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                module = ".".join(parts[:depth])
                if module in seen or (path := _module_file(module)) is None:
                    continue
                seen.add(module)
                pending += [(n, [*chain, module]) for n in sorted(_imported_modules(path, False))]
        elif top not in sys.stdlib_module_names and top != "__future__":
            found.setdefault(top, chain)
    return found


@cache
def _distributions_of_modules() -> dict[str, tuple[str, ...]]:
    return {
        module: tuple(canonicalize_name(d) for d in dists)
        for module, dists in packages_distributions().items()
    }


@cache
def installed_with(distributions: frozenset[str]) -> frozenset[str]:
    """``distributions`` and everything they require, transitively, as far as this environment's
    metadata knows (what pip installs with them)."""
    found, pending = set(), list(distributions)
    while pending:
        name = canonicalize_name(pending.pop())
        if name in found:
            continue
        found.add(name)
        try:
            requirements = requires(name) or []
        except PackageNotFoundError:
            continue
        for text in requirements:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return frozenset(found)


def missing_requirements(script: Path, provided: set[str]) -> list[tuple[str, list[str], str]]:
    """``(module, chain, distribution)`` for each third-party module ``script`` imports that no
    distribution of ``provided`` (or what they require) supplies; ``distribution`` is the one to
    declare (the module's own name where this environment does not have it)."""
    have = installed_with(frozenset(canonicalize_name(p) for p in provided))
    missing = []
    for module, chain in third_party_imports(script).items():
        candidates = _distributions_of_modules().get(module) or (canonicalize_name(module),)
        if not set(candidates) & have:
            missing.append((module, chain, candidates[0]))
    return missing
