"""How fast this machine is, in two numbers, so timings from different machines can be related.

The same 2-core VM type has run 2-3x apart between sessions (README, Speed and memory), so
every whole-run timing is printed with:

- **sgemm**: one thread's float32 matrix product (numpy's BLAS, 2048 x 2048, best of 5), in
  GFLOP/s: a rough proxy for the learnt models' training and the metrics' dense algebra (torch
  has its own BLAS, so the proxy is not exact);
- **python**: a pure-Python loop (dict and list work, best of 5), in million iterations per
  second: a proxy for the runner, pandas glue and start-up.

It takes about 2 s; run it alone, on an idle machine:

    python benchmarks/machine_speed.py
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
from threadpoolctl import threadpool_limits


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sgemm_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best of ``repeats`` one-thread float32 products of two ``size`` x ``size`` matrices."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    best = float("inf")
    with threadpool_limits(limits=1):
        a @ b  # the BLAS's first call allocates its buffers
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def python_mops(iterations: int = 1_000_000, repeats: int = 5) -> float:
    """Best of ``repeats`` runs of a loop of dict and list work, in million iterations per second."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        table: dict[int, int] = {}
        items: list[int] = []
        for i in range(iterations):
            table[i & 1023] = table.get(i & 1023, 0) + i
            items.append(i)
        best = min(best, time.perf_counter() - start)
    return iterations / best / 1e6


def _usable_cores() -> int:
    # The cores this process may run on (a container's or taskset's limit), not the host's.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def machine_speed() -> str:
    """One line: CPU model, usable cores, sgemm GFLOP/s (one thread) and Python Mops/s."""
    return (
        f"{_cpu_model()}, {_usable_cores()} cores: sgemm {sgemm_gflops():.1f} GFLOP/s (one thread), "
        f"python {python_mops():.1f} M loop iterations/s"
    )


if __name__ == "__main__":
    print(machine_speed())
