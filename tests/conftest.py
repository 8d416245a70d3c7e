"""Shared fixtures: the real data folder and components run through their command lines.

Components are always run as the runner and Nextflow run them: ``python
script.py --arg value ...``, with the command line built from the spec.
Expensive outputs (loaded datasets, task files) are made once per session.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anndata as ad
import pytest
from threadpoolctl import threadpool_limits

from scmib.component import command_line, run_component
from scmib.contracts import check_file, load_contract
from scmib.runner.execute import job_env, threads_per_job
from scmib.spec import ComponentSpec, load_spec

REPO = Path(__file__).resolve().parents[1]
COMPONENTS = REPO / "components"


def pytest_configure(config) -> None:
    """Each pytest-xdist worker gets its share of the cores for what it runs in its own process
    (in-process metrics, torch), as the runner gives each job its share: workers with every
    core each would oversubscribe the machine. Runs before numba or torch is imported; numpy's
    BLAS, loaded already, is limited through threadpoolctl."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers:
        share = threads_per_job(workers)
        for var, value in job_env(threads=share).items():
            if var.endswith("_NUM_THREADS"):
                os.environ.setdefault(var, value)
        # numpy's OpenBLAS, loaded already (anndata), read its variable when it loaded.
        threadpool_limits(limits=share)


def shared_data_dir() -> Path:
    """``$SCMIB_TEST_DATA`` or ``../shared/data`` beside the checkout (never copied into the repo)."""
    path = Path(os.environ.get("SCMIB_TEST_DATA", REPO.parent / "shared" / "data"))
    if not (path / "MANIFEST.md").is_file():
        pytest.fail(f"real test data not found at {path}; set SCMIB_TEST_DATA", pytrace=False)
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return shared_data_dir()


def spec_of(component: str) -> ComponentSpec:
    return load_spec(COMPONENTS / component)


def run_in_process(component: str, **values) -> None:
    """Run a component's ``main`` with the same argv, in this process.

    The same parsing, validation and atomic writes as :func:`run_cli`; used where
    many predictions are scored, so numba's just-in-time compilation of scanpy's
    neighbour graph (about 10 s per process) happens once, not per call.
    """
    spec = spec_of(component)
    loader = importlib.util.spec_from_file_location(f"component_{spec.name}", spec.script_path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    run_component(spec.script_path, module.main, command_line(spec, values))


def environment_without_thread_limits() -> dict[str, str]:
    """This process's environment less every ``*_NUM_THREADS`` variable (a test sets its own)."""
    return {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}


def run_cli(component: str, check: bool = True, **values) -> subprocess.CompletedProcess:
    """Run a component through the command line its spec defines."""
    spec = spec_of(component)
    cmd = [sys.executable, str(spec.script_path), *command_line(spec, values)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=job_env(threads=1))
    if check and proc.returncode != 0:
        raise AssertionError(f"{component} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def load_common(folder: Path, loader: str, data_dir: Path, **args) -> tuple[Path, Path]:
    rna, mod2 = folder / "rna.h5ad", folder / "mod2.h5ad"
    run_cli(f"datasets/loaders/{loader}", output_rna=rna, output_mod2=mod2, data_mirror=data_dir, **args)
    return rna, mod2


def make_task(folder: Path, common: tuple[Path, Path], direction: str, **params) -> dict[str, Path]:
    files = {name: folder / f"{name}.h5ad" for name in ("train_mod1", "train_mod2", "test_mod1", "test_mod2")}
    run_cli(
        "predict_modality/processors/train_test_split",
        input_rna=common[0],
        input_mod2=common[1],
        direction=direction,
        **{f"output_{k}": v for k, v in files.items()},
        **params,
    )
    return files


T = TypeVar("T")


def made_once(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], T]) -> T:
    """``make(folder)``, made once per test session even when pytest-xdist runs it in several workers.

    Without xdist, ``folder`` is a fresh temporary folder. With it, the first worker to ask
    makes it in the session's shared temporary folder under a file lock; the others wait, then
    read the pickled result (paths of files that nobody changes). Only for read-only outputs:
    a fixture whose output tests change stays per worker.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return make(tmp_path_factory.mktemp(name))
    shared = tmp_path_factory.getbasetemp().parent  # the session's folder, above each worker's own
    folder, made = shared / name, shared / f"{name}.pickle"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if made.exists():
            return pickle.loads(made.read_bytes())
        shutil.rmtree(folder, ignore_errors=True)  # left by a worker that failed while making it
        folder.mkdir()
        result = make(folder)
        made.write_bytes(pickle.dumps(result))
        return result


@pytest.fixture(scope="session")
def triana_common(tmp_path_factory, data_dir) -> tuple[Path, Path]:
    return made_once(
        tmp_path_factory, "triana", lambda folder: load_common(folder, "triana2021_bm_abseq", data_dir)
    )


@pytest.fixture(scope="session")
def snare_common(tmp_path_factory, data_dir) -> tuple[Path, Path]:
    return made_once(
        tmp_path_factory, "snare", lambda folder: load_common(folder, "snareseq2_mop2021", data_dir)
    )


@pytest.fixture(scope="session")
def starter_cite_common(tmp_path_factory, data_dir) -> tuple[Path, Path]:
    return made_once(
        tmp_path_factory,
        "starter_cite",
        lambda folder: load_common(folder, "neurips2021_starter", data_dir, modality="cite"),
    )


@pytest.fixture(scope="session")
def triana_gex2adt(tmp_path_factory, triana_common) -> dict[str, Path]:
    return made_once(
        tmp_path_factory, "triana_gex2adt", lambda folder: make_task(folder, triana_common, "gex2adt")
    )


@pytest.fixture(scope="session")
def triana_adt2gex(tmp_path_factory, triana_common) -> dict[str, Path]:
    return made_once(
        tmp_path_factory, "triana_adt2gex", lambda folder: make_task(folder, triana_common, "adt2gex")
    )


@pytest.fixture(scope="session")
def snare_gex2atac(tmp_path_factory, snare_common) -> dict[str, Path]:
    return made_once(
        tmp_path_factory, "snare_gex2atac", lambda folder: make_task(folder, snare_common, "gex2atac")
    )


def predict(component: str, task: dict[str, Path], out: Path, **params) -> Path:
    """Run a predict-modality method or control (``methods/knn_regression``) on ``task``'s files."""
    inputs = {f"input_{n}": task[n] for n in ("train_mod1", "train_mod2", "test_mod1")}
    if component.startswith("control_methods/"):
        inputs["input_test_mod2"] = task["test_mod2"]
    run_cli(f"predict_modality/{component}", output=out, **inputs, **params)
    check_file(read(out), load_contract("predict_modality/prediction"), out)
    return out


def score(prediction: Path, solution: Path, out: Path, metric: str = "error") -> dict[str, float]:
    """Score a predict-modality prediction with ``metric``: its values by metric id."""
    run_cli(
        f"predict_modality/metrics/{metric}",
        input_prediction=prediction,
        input_test_mod2=solution,
        output=out,
    )
    adata = read(out)
    check_file(adata, load_contract("predict_modality/score"), out)
    return dict(zip(adata.uns["metric_ids"], map(float, adata.uns["metric_values"]), strict=True))


def organisers_files(data_dir: Path, modality: str) -> dict[str, Path]:
    folder = data_dir / "neurips2021_starter" / modality / "predict_modality"
    return {p.stem: p for p in folder.glob("*.h5ad")}


def read(path: Path) -> ad.AnnData:
    return ad.read_h5ad(path)


# A copy of the repository's components plus a method that crashes and one that does
# not apply, run once per session with the test profile on the CITE starter cells.
METHODS = Path("components/predict_modality/methods")


def add_method(repo: Path, name: str, body: str) -> None:
    folder = repo / METHODS / name
    shutil.copytree(repo / METHODS / "knn_regression", folder)
    config = (folder / "config.yaml").read_text().replace("name: knn_regression", f"name: {name}")
    (folder / "config.yaml").write_text(config)
    (folder / "script.py").write_text(
        "from scmib.component import ComponentRun, run_component\n"
        "from scmib.errors import NotApplicable\n\n\n"
        f"def main(run: ComponentRun) -> None:\n    run.read('input_train_mod1')\n    {body}\n\n\n"
        "if __name__ == '__main__':\n    run_component(__file__, main)\n"
    )


@pytest.fixture(scope="session")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(COMPONENTS, root / "components")
    shutil.copy(REPO / "nextflow_schema.json", root)  # staged beside components/ for `scmib plan --param`
    add_method(root, "crashing_method", "raise RuntimeError('deliberate crash')")
    add_method(root, "inapplicable_method", "raise NotApplicable('needs ATAC')")
    return root


def scmib_run(repo: Path, data_dir: Path, outdir: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "scmib.cli",
        "run",
        "--task",
        "predict_modality",
        "--profile",
        "test",
        "--datasets",
        "neurips2021_starter_cite",
        "--metrics",
        "error",
        "--outdir",
        str(outdir),
        "--data_mirror",
        str(data_dir),
        "--jobs",
        "2",
        "--no-progress",
        *extra,
    ]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="session")
def first_run(repo, data_dir, tmp_path_factory):
    outdir = tmp_path_factory.mktemp("out")
    proc = scmib_run(repo, data_dir, outdir)
    return outdir, proc
