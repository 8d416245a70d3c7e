"""Dockerfiles: hadolint-clean, in step with their specs, and (where an engine runs) built and run offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import anndata as ad
import numpy as np
import pytest
from conftest import REPO, spec_of

from scmib.containers import (
    base_for,
    build_order,
    component_dockerfile,
    container_problems,
    dockerfile_problems,
    hadolint_problems,
)
from scmib.spec import discover, load_spec


def test_every_dockerfile_is_clean_and_matches_its_spec():
    assert container_problems(REPO) == []


def test_torch_components_start_from_the_torch_image():
    spec = spec_of("predict_modality/methods/novel_lsi_mlp")
    assert base_for(spec).ref == "ghcr.io/scmib/torch:0.1.0"
    assert [image for _, image in build_order([spec])] == [
        "ghcr.io/scmib/base:0.1.0",
        "ghcr.io/scmib/torch:0.1.0",
        "ghcr.io/scmib/predict_modality/methods/novel_lsi_mlp:0.1.0",
    ]


def test_a_requirement_missing_from_the_dockerfile_fails(tmp_path):
    folder = tmp_path / "predict_modality/methods/knn_regression"
    shutil.copytree(REPO / "components/predict_modality/methods/knn_regression", folder)
    config = folder / "config.yaml"
    config.write_text(
        config.read_text().replace("python: [scikit-learn]", "python: [scikit-learn, bbknn==1.6.0]")
    )
    spec = load_spec(config)
    problems = dockerfile_problems(spec, (folder / "Dockerfile").read_text())
    assert problems == [
        "components/predict_modality/methods/knn_regression/Dockerfile: pip installs [], "
        "the spec needs ['bbknn'] beyond base"
    ]
    # The generated Dockerfile installs it, and only it.
    assert dockerfile_problems(spec, component_dockerfile(spec)) == []
    assert "bbknn==1.6.0" in component_dockerfile(spec)


def test_wrong_base_entrypoint_and_copy_are_reported():
    spec = spec_of("predict_modality/methods/novel_lsi_mlp")
    text = component_dockerfile(spec).replace("ghcr.io/scmib/torch:0.1.0", "ghcr.io/scmib/base:0.1.0")
    text = text.replace("COPY components/", "COPY components_old/") + 'ENTRYPOINT ["python"]\n'
    problems = " | ".join(dockerfile_problems(spec, text))
    assert "should be the single base ghcr.io/scmib/torch:0.1.0" in problems
    assert "must COPY components/predict_modality/methods/novel_lsi_mlp" in problems
    assert "no ENTRYPOINT" in problems


def test_hadolint_reports_bad_practice(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN apt-get update && apt-get install -y curl\nRUN cd /tmp && ls\n")
    found = " ".join(hadolint_problems([bad]))
    assert "DL3006" in found  # untagged base image
    assert "DL3008" in found  # unpinned apt package
    assert "DL3003" in found  # cd instead of WORKDIR


def docker_available() -> bool:
    engine = shutil.which("docker")
    return engine is not None and subprocess.run([engine, "info"], capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("SCMIB_DOCKER_TESTS"), reason="set SCMIB_DOCKER_TESTS=1 with a running Docker engine"
)
def test_component_image_builds_and_runs_without_network(first_run, tmp_path):
    """Build the kNN image with no network (local wheels), run its job in it with no network, on real cells.

    Its prediction must equal the one the local runner made from the same inputs.
    """
    assert docker_available(), "SCMIB_DOCKER_TESTS is set but no Docker engine answers"
    component = "predict_modality/methods/knn_regression"
    env = {**os.environ, "PYTHON_IMAGE": os.environ.get("SCMIB_TEST_PYTHON_IMAGE", "python:3.11-slim")}
    build = subprocess.run(
        ["bash", "docker/build_all.sh", "--offline", component],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]

    outdir, _ = first_run
    task = tmp_path / "task"
    task.mkdir()
    data = outdir / "predict_modality/neurips2021_starter_cite/gex2adt/data"
    staged = task / "predict_modality__neurips2021_starter_cite__gex2adt__data"
    shutil.copytree(data, staged)
    plan = json.loads(
        subprocess.run(
            [sys.executable, "-m", "scmib.cli", "plan", "--profile", "test", "--datasets",
             "neurips2021_starter_cite", "--methods", "knn_regression", "--metrics", "error",
             "--container-engine", "docker"],
            cwd=REPO, capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    job_id = "predict_modality/neurips2021_starter_cite/gex2adt/knn_regression"
    entry = next(job for job in plan["jobs"] if job["id"] == job_id)
    # As workflows/modules/scmib_job.nf stages it: the entry, the job's own component folder.
    (task / "job.json").write_text(entry["entry_json"])
    shutil.copytree(REPO / "components" / component, task / "component")
    docker = shutil.which("docker")
    run = subprocess.run(
        [docker, "run", "--rm", *entry["container_options"].split(), "-u", f"{os.getuid()}:{os.getgid()}",
         "-v", f"{task}:{task}", "-w", str(task), entry["container"],
         "scmib", "job", "--job", "job.json", "--component", "component", "--record", "jobs"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert entry["container_options"] == "--network none"
    assert run.returncode == 0, run.stderr[-3000:]
    folder = task / "predict_modality__neurips2021_starter_cite__gex2adt__knn_regression"
    record = json.loads((folder / ".job.json").read_text())
    assert record["status"] == "success", (folder / ".job.log").read_text()
    assert f"{task}/component/script.py" in (folder / ".job.log").read_text().splitlines()[0]
    assert (task / "jobs" / folder.name / ".job.json").is_file()
    in_container = ad.read_h5ad(folder / "prediction.h5ad")
    local = ad.read_h5ad(
        outdir / "predict_modality/neurips2021_starter_cite/gex2adt/knn_regression/prediction.h5ad"
    )
    np.testing.assert_allclose(
        in_container.layers["normalized"], local.layers["normalized"], rtol=1e-5, atol=1e-6
    )


def test_every_spec_names_its_image_by_its_id():
    for spec in discover(REPO / "components"):
        assert spec.container.image == f"ghcr.io/scmib/{spec.id}"


def test_pip_requirements_of_a_component_without_any_are_no_lines_at_all():
    """build_all.sh --offline hands each line to `pip download`; pip before 24 rejects an empty one."""

    def lines(*components: str) -> list[str]:
        cmd = [sys.executable, "-m", "scmib.cli", "images", "--pip-requirements", *components]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
        return proc.stdout.splitlines()

    assert lines("predict_modality/methods/knn_regression") == []
    assert "scvi-tools" in " ".join(lines("joint_embedding/methods/totalvi"))
