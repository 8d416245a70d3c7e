"""Per-job overhead of the local runner: an empty component, started cold and warm.

The empty component parses its command line through ``scmib.component`` and
does nothing else, so what a job costs here is pure start-up: a cold start is
a new interpreter importing the scmib runtime (and scanpy, as most components
do; or torch, as the learnt models do); a warm start is a fork of the
warm-start server (:mod:`scmib.runner.warm`), and for a component declaring
torch a fork of the second server, which has imported torch too ("warm+torch";
"warm" is the plain server, where the component imports torch itself).
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
from scmib.runner.warm import WarmServer, extra_preload
from scmib.spec import load_spec

#: case -> (the component's imports, its spec's Python requirements)
CASES = {
    "empty": ("from scmib.component import run_component\n", []),
    "empty + scanpy": ("import scanpy  # noqa: F401\nfrom scmib.component import run_component\n", []),
    "empty + torch": (
        "import scmib.methods.torch_models  # noqa: F401\nfrom scmib.component import run_component\n",
        ["torch"],
    ),
}
MAIN = "\n\ndef main(run):\n    pass\n\n\nif __name__ == '__main__':\n    run_component(__file__, main)\n"


def empty_component(folder: Path, imports: str, requirements: list[str]) -> Job:
    folder.mkdir(parents=True)
    config = {
        "name": "empty",
        "kind": "control_method",
        "task": "predict_modality",
        "label": "Empty",
        "summary": "Does nothing.",
        "description": "Start-up only.",
        "container": {"image": "none"},
        "requirements": {"python": requirements},
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
        env = job_env(1, Path(tmp) / "numba")
        servers = {}
        for preload in sorted({extra_preload(requirements) for _, requirements in CASES.values()}):
            start = time.perf_counter()
            servers[preload] = WarmServer(env, Path(tmp) / f"warm{len(servers)}.log", preload)
            ready_s = time.perf_counter() - start
            what = " + ".join(("the stack", *preload))
            print(f"warm-start server with {what} ready in {ready_s:.1f} s (once per run)")
        try:
            print(f"\n{'component':<16} {'start':<10} {'wall s/job':>10} {'CPU s/job':>10} {'peak MB':>8}")
            for name, (imports, requirements) in CASES.items():
                job = empty_component(Path(tmp) / name.replace(" + ", "_"), imports, requirements)
                rows = {"cold": measure(job, args.jobs, None), "warm": measure(job, args.jobs, servers[()])}
                if preload := extra_preload(requirements):
                    rows["warm+" + preload[0]] = measure(job, args.jobs, servers[preload])
                for label, (wall, cpu, peak) in rows.items():
                    print(f"{name:<16} {label:<10} {wall:>10.3f} {cpu:>10.3f} {peak:>8.0f}")
                best = list(rows.values())[-1]
                cold = rows["cold"]
                print(f"{name:<16} {'ratio':<10} {cold[0] / best[0]:>9.1f}x {cold[1] / best[1]:>9.1f}x\n")
        finally:
            for server in servers.values():
                server.close()


if __name__ == "__main__":
    main()
