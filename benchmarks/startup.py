"""Per-job overhead of the local runner: an empty component, started cold and warm.

The empty component parses its command line through ``scmib.component`` and
does nothing else, so what a job costs here is pure start-up: a cold start is
a new interpreter importing the scmib runtime (and scanpy, as most components
do); a warm start is a fork of the warm-start server (:mod:`scmib.runner.warm`).
Both go through the same supervision (:func:`scmib.runner.execute.run_job`),
one job at a time, in this process. Prints wall and CPU seconds per job
(CPU: the component's, plus the runner's own), and peak memory.

    python benchmarks/startup.py [--jobs 20]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from scmib.runner.execute import SUCCESS, job_env, run_job
from scmib.runner.plan import Job
from scmib.runner.warm import WarmServer
from scmib.spec import load_spec

SCRIPTS = {
    "empty": "from scmib.component import run_component\n",
    "empty + scanpy": "import scanpy  # noqa: F401\nfrom scmib.component import run_component\n",
}
MAIN = "\n\ndef main(run):\n    pass\n\n\nif __name__ == '__main__':\n    run_component(__file__, main)\n"


def empty_component(folder: Path, imports: str) -> Job:
    folder.mkdir(parents=True)
    config = {
        "name": "empty",
        "kind": "control_method",
        "task": "predict_modality",
        "label": "Empty",
        "summary": "Does nothing.",
        "description": "Start-up only.",
        "container": {"image": "none"},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "script.py").write_text(imports + MAIN)
    return Job(id="empty", spec=load_spec(folder), stage="control_method", workdir=folder / "work")


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(job: Job, n: int, server: WarmServer | None) -> tuple[float, float, float]:
    """Median wall s, mean CPU s (component + runner) and median peak MB of ``n`` runs."""
    walls, cpus, peaks = [], [], []
    for _ in range(n):
        before = own_cpu_s()
        start = time.perf_counter()
        result = run_job(job, "key", threads=1, warm=server)
        walls.append(time.perf_counter() - start)
        if result.status != SUCCESS:
            sys.exit(f"the empty component did not succeed: {result.message}")
        cpus.append(result.cpu_time_s + own_cpu_s() - before)
        peaks.append(result.peak_memory_mb)
    return statistics.median(walls), statistics.mean(cpus), statistics.median(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20, help="runs per case (default: %(default)s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        server = WarmServer(job_env(1, Path(tmp) / "numba"), Path(tmp) / "warm.log")
        ready_s = time.perf_counter() - start
        print(f"warm-start server ready in {ready_s:.1f} s (once per run)\n")
        print(f"{'component':<16} {'start':<5} {'wall s/job':>10} {'CPU s/job':>10} {'peak MB':>8}")
        for name, imports in SCRIPTS.items():
            job = empty_component(Path(tmp) / name.replace(" + ", "_"), imports)
            cold = measure(job, args.jobs, None)
            warm = measure(job, args.jobs, server)
            for label, (wall, cpu, peak) in (("cold", cold), ("warm", warm)):
                print(f"{name:<16} {label:<5} {wall:>10.3f} {cpu:>10.3f} {peak:>8.0f}")
            print(f"{name:<16} ratio {cold[0] / warm[0]:>9.1f}x {cold[1] / warm[1]:>9.1f}x\n")
        server.close()


if __name__ == "__main__":
    main()
