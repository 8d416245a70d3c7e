"""The fault catalogue: what scmib does with interruptions, runaway components and wrong inputs.

Each case runs against a scratch copy of the repository's components and a
scratch output folder (a first, small run is made to start from: the test
profile's predict-modality jobs on the CITE starter cells), and one row is
printed per case: the case, its outcome, whether the error was clean (one
message naming the file or option, no traceback), whether a partial output
was left under a final name, and whether the run went on.

    python benchmarks/faults.py --data_mirror ../shared/data
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
METHODS = Path("components/predict_modality/methods")
TASK = "predict_modality/neurips2021_starter_cite/gex2adt"


def scmib(*args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scmib.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def add_method(repo: Path, name: str, body: str) -> None:
    folder = repo / METHODS / name
    shutil.copytree(repo / METHODS / "knn_regression", folder, dirs_exist_ok=True)
    config = (folder / "config.yaml").read_text().replace("name: knn_regression", f"name: {name}")
    (folder / "config.yaml").write_text(config)
    (folder / "script.py").write_text(
        "from scmib.component import ComponentRun, run_component\n\n\n"
        f"def main(run: ComponentRun) -> None:\n    run.read('input_train_mod1')\n    {body}\n\n\n"
        "if __name__ == '__main__':\n    run_component(__file__, main)\n"
    )


def run_args(out: Path, mirror: str, *extra: str) -> list[str]:
    return [
        "run", "--task", "predict_modality", "--profile", "test", "--datasets", "neurips2021_starter_cite",
        "--metrics", "error", "--outdir", str(out), "--data_mirror", mirror, "--no-progress", *extra,
    ]  # fmt: skip


def clean(stderr: str) -> bool:
    return "Traceback" not in stderr


def alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def record(out: Path, method: str) -> dict:
    return json.loads((out / TASK / method / ".job.json").read_text())


def run_method(repo: Path, out: Path, mirror: str, name: str, body: str) -> tuple:
    """Add a method whose ``main`` runs ``body``, run it alone; its process and its job record."""
    add_method(repo, name, body)
    proc = scmib(*run_args(out, mirror, "--methods", name), cwd=repo)
    return proc, record(out, name)


def case_ctrl_c(repo: Path, out: Path, mirror: str) -> tuple:
    add_method(
        repo, "hanging", "import subprocess, time; p = subprocess.Popen(['setsid', 'sleep', '600']); "
        "open(str(run.path('output')) + '.pid', 'w').write(str(p.pid)); time.sleep(600)",
    )  # fmt: skip
    command = [sys.executable, "-m", "scmib.cli", *run_args(out, mirror, "--methods", "hanging")]
    proc = subprocess.Popen(command, cwd=repo, stderr=subprocess.PIPE, text=True)
    pid_file = out / TASK / "hanging/prediction.h5ad.pid"
    while not pid_file.exists():
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    start = time.perf_counter()
    _, stderr = proc.communicate(timeout=120)
    stopped = time.perf_counter() - start
    time.sleep(0.5)
    left = alive(int(pid_file.read_text()))
    outcome = f"exit {proc.returncode} after {stopped:.1f} s, {record(out, 'hanging')['status']}"
    shutil.rmtree(repo / METHODS / "hanging")
    return outcome + ("; a process outlived it" if left else ""), clean(stderr), False, True


def case_memory(repo: Path, out: Path, mirror: str) -> tuple:
    # 8 GB; the label is lowmem (4 GB).
    proc, rec = run_method(repo, out, mirror, "greedy", "import numpy as np; np.ones(int(1e9))")
    return (
        f"{rec['status']}: {rec['message'].splitlines()[0]}",
        clean(proc.stderr),
        False,
        proc.returncode == 0,
    )


def case_huge_log(repo: Path, out: Path, mirror: str) -> tuple:
    body = "import sys; [sys.stdout.write('x' * 1023 + '\\n') for _ in range(500_000)]; 1 / 0"
    proc, rec = run_method(repo, out, mirror, "chatty", body)
    size = (out / TASK / "chatty/.job.log").stat().st_size
    return f"{rec['status']}, 500 MB printed, log kept {size / 1e6:.1f} MB", clean(proc.stderr), False, True


def case_two_runs(repo: Path, out: Path, mirror: str) -> tuple:
    add_method(repo, "slow", "import time; time.sleep(20)")
    first = subprocess.Popen([sys.executable, "-m", "scmib.cli", *run_args(out, mirror, "--methods", "slow")],
                             cwd=repo, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(8)
    second = scmib(*run_args(out, mirror, "--methods", "slow"), cwd=repo)
    first.communicate(timeout=600)
    return (
        f"second run exit {second.returncode}: {second.stderr.strip().splitlines()[-1][:70]}",
        clean(second.stderr),
        False,
        first.returncode == 0,
    )


def case_half_written(repo: Path, out: Path, mirror: str) -> tuple:
    body = "open(str(run.path('output')), 'wb').write(b'half'); raise SystemExit(3)"
    proc, rec = run_method(repo, out, mirror, "half", body)
    left = (out / TASK / "half/prediction.h5ad").exists()
    return (
        f"{rec['status']}, set aside as .partial",
        clean(proc.stderr),
        left,
        proc.returncode == 0,
    )


def case_no_mirror(repo: Path, out: Path, mirror: str) -> tuple:
    args = [a for a in run_args(out, mirror) if a not in ("--data_mirror", mirror)]
    proc = scmib(*args, "--methods", "knn_regression", cwd=repo)
    runs = pd.read_csv(out / "results/runs.tsv", sep="\t").set_index("job")
    loader = runs.loc["datasets/neurips2021_starter_cite", "status"]
    kept = (out / "datasets/neurips2021_starter_cite/rna.h5ad").exists()
    return f"loader {loader}, dataset kept: {kept}", clean(proc.stderr), False, proc.returncode == 0


def case_typo_filter(repo: Path, out: Path, mirror: str) -> tuple:
    proc = scmib(*run_args(out, mirror, "--methods", "knn_regresion"), cwd=repo)
    return (
        f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1][:70]}",
        clean(proc.stderr),
        False,
        False,
    )


def case_typo_option(repo: Path, out: Path, mirror: str) -> tuple:
    proc = scmib("run", "--profle", "test", cwd=repo)
    return (
        f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1][-60:]}",
        clean(proc.stderr),
        False,
        False,
    )


def _method_on(repo: Path, tmp: Path, mirror: str, test_mod1: Path) -> subprocess.CompletedProcess:
    files = Path(mirror) / "neurips2021_starter/cite/predict_modality"
    train1, train2 = sorted(files.glob("*train_mod1.h5ad"))[0], sorted(files.glob("*train_mod2.h5ad"))[0]
    script = repo / METHODS / "knn_regression/script.py"
    return subprocess.run(
        [sys.executable, str(script), "--input_train_mod1", str(train1), "--input_train_mod2", str(train2),
         "--input_test_mod1", str(test_mod1), "--output", str(tmp / "prediction.h5ad")],
        capture_output=True, text=True,
    )  # fmt: skip


def case_inputs(repo: Path, out: Path, mirror: str, tmp: Path) -> list[tuple]:
    files = Path(mirror) / "neurips2021_starter/cite/predict_modality"
    test = ad.read_h5ad(sorted(files.glob("*test_mod1.h5ad"))[0])
    rows = []
    permuted = test[:, np.random.default_rng(0).permutation(test.n_vars)].copy()
    nan = test.copy()
    nan.X = nan.X.toarray()
    nan.X[0, 0] = np.nan
    negative = test.copy()
    negative.layers["counts"] = negative.layers["counts"].toarray() * -1
    for name, adata in (("permuted genes", permuted), ("NaN value", nan), ("negative counts", negative)):
        path = tmp / f"{name.replace(' ', '_')}.h5ad"
        adata.write_h5ad(path)
        proc = _method_on(repo, tmp, mirror, path)
        message = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
        left = (tmp / "prediction.h5ad").exists()
        rows.append(
            (f"input: {name}", f"exit {proc.returncode}: {message[-70:]}", clean(proc.stderr), left, False)
        )
    not_anndata = tmp / "foo.h5ad"
    with h5py.File(not_anndata, "w") as handle:
        handle["foo"] = [1]
    proc = _method_on(repo, tmp, mirror, not_anndata)
    rows.append(("input: HDF5 but not AnnData", f"exit {proc.returncode}: {proc.stderr.strip()[-70:]}",
                 clean(proc.stderr), False, False))  # fmt: skip
    return rows


def case_bad_spec(repo: Path, out: Path, mirror: str) -> tuple:
    config = repo / METHODS / "knn_regression/config.yaml"
    original = config.read_text()
    config.write_text(original.replace("default: 25,", 'default: "many",'))
    proc = scmib("lint", "--components", str(repo / "components"), cwd=repo)
    config.write_text(original)
    return (
        f"lint exit {proc.returncode}: {proc.stderr.strip().splitlines()[0][-70:]}",
        clean(proc.stderr),
        False,
        False,
    )


def case_tampered_cache(tmp: Path) -> tuple:
    from scmib.data.cache import Source, fetch, sha256sum

    (tmp / "cache").mkdir()
    (tmp / "good").write_bytes(gzip.compress(b"data"))
    source = Source("x/file", "https://invalid.invalid/file", sha256sum(tmp / "good"))
    (tmp / "cache" / "x__file").write_bytes(b"tampered")
    try:
        fetch(source, cache_dir=str(tmp / "cache"))
        outcome = "served (wrong)"
    except Exception as exc:  # the clear error is the point
        outcome = f"refused: {str(exc)[:50]}"
    return f"{outcome}; removed: {not (tmp / 'cache' / 'x__file').exists()}", True, False, False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_mirror", required=True)
    args = parser.parse_args()
    mirror = str(Path(args.data_mirror).resolve())
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        repo, out = tmp / "repo", tmp / "out"
        shutil.copytree(REPO / "components", repo / "components")
        os.environ["SCMIB_REPO"] = str(repo)
        start = time.perf_counter()
        first = scmib(*run_args(out, mirror, "--methods", "knn_regression"), cwd=repo)
        assert first.returncode == 0, first.stderr[-2000:]
        print(f"first run: {time.perf_counter() - start:.0f} s")
        rows = [
            ("Ctrl-C with a hanging component (and a setsid'd child)", *case_ctrl_c(repo, out, mirror)),
            ("component allocates 8 GB (label: 4 GB)", *case_memory(repo, out, mirror)),
            ("component prints 500 MB, then fails", *case_huge_log(repo, out, mirror)),
            ("second scmib run on the same --outdir", *case_two_runs(repo, out, mirror)),
            ("component writes half an output, then crashes", *case_half_written(repo, out, mirror)),
            ("same command again without --data_mirror (offline)", *case_no_mirror(repo, out, mirror)),
            ("--methods knn_regresion (typo)", *case_typo_filter(repo, out, mirror)),
            ("--profle test (typo)", *case_typo_option(repo, out, mirror)),
            *case_inputs(repo, out, mirror, tmp),
            ("spec: default 'many' for an integer", *case_bad_spec(repo, out, mirror)),
            ("tampered file in the download cache", *case_tampered_cache(tmp)),
        ]
    print("\n| case | outcome | clean error | partial output left | run went on |\n|---|---|---|---|---|")
    for case, outcome, is_clean, left, went_on in rows:
        print(f"| {case} | {outcome} | {'yes' if is_clean else 'NO'} | {'YES' if left else 'no'} | "
              f"{'yes' if went_on else '-'} |")  # fmt: skip


if __name__ == "__main__":
    main()
