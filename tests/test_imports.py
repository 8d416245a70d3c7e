"""`scmib lint` names a package a component's script imports (itself or through scmib's modules)
that its container image would not have."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from scmib.imports import third_party_imports
from scmib.lint import lint

COMPONENTS = Path(__file__).resolve().parents[1] / "components"


def _knn_with(tmp_path: Path, extra_import: str, requirements: list[str]) -> list[str]:
    """knn_regression with ``extra_import`` added to its script and ``requirements.python`` set."""
    folder = tmp_path / "components/predict_modality/methods/knn_regression"
    shutil.copytree(COMPONENTS / "predict_modality/methods/knn_regression", folder)
    script = folder / "script.py"
    text = script.read_text()
    assert "\nimport scipy.sparse as sp\n" in text
    script.write_text(
        text.replace("\nimport scipy.sparse as sp\n", f"\nimport scipy.sparse as sp\n{extra_import}\n", 1)
    )
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["requirements"] = {"python": requirements}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return lint(tmp_path / "components")


@pytest.mark.parametrize(
    ("extra_import", "requirements", "problem"),
    [
        ("import torch", [], "imports 'torch', which its image would not have: add 'torch'"),
        ("import torch", ["torch"], None),
        ("import scvi", ["torch"], "add 'scvi-tools' to requirements.python"),
        ("import scvi", ["scvi-tools"], None),
        ("from sklearn.neighbors import KNeighborsRegressor", [], None),  # the base image has it
        ("import json", [], None),  # the standard library
        # Through scmib: the module imports torch when it is imported; the function imports scvi inside.
        ("from scmib.methods.lsl_ae import LslConfig", [], "(through scmib.methods.lsl_ae), which"),
        ("from scmib.methods.scvi_models import totalvi_latent", ["torch"], "imports 'scvi' (through"),
        ("from scmib.methods.scvi_models import variable_genes", [], None),  # scanpy only
    ],
)
def test_lint_names_what_a_script_imports_and_its_image_lacks(tmp_path, extra_import, requirements, problem):
    problems = "\n".join(_knn_with(tmp_path, extra_import, requirements))
    if problem is None:
        assert "which its image would not have" not in problems
    else:
        assert problem in problems


def test_every_component_script_imports_what_its_image_has():
    problems = [p for p in lint(COMPONENTS) if "which its image would not have" in p]
    assert problems == []
    # The check sees what the scripts import: a torch method's torch, through scmib.
    script = COMPONENTS / "joint_embedding/methods/lsl_autoencoder/script.py"
    assert third_party_imports(script)["torch"] == ["scmib.methods.lsl_ae"]
