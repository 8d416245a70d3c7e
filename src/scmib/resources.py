"""Resource labels a component spec declares, and what they mean.

The same table drives the local runner (time limits, threads per job) and the
Nextflow configuration (``withLabel`` blocks), so a label means one thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Label:
    name: str
    group: str  # cpu | memory | time | gpu
    cpus: int | None = None
    memory_gb: int | None = None
    time_s: int | None = None


LABELS: dict[str, Label] = {
    label.name: label
    for label in (
        Label("lowcpu", "cpu", cpus=1),
        Label("midcpu", "cpu", cpus=4),
        Label("highcpu", "cpu", cpus=16),
        Label("lowmem", "memory", memory_gb=4),
        Label("midmem", "memory", memory_gb=16),
        Label("highmem", "memory", memory_gb=64),
        Label("lowtime", "time", time_s=10 * 60),
        Label("midtime", "time", time_s=60 * 60),
        Label("hightime", "time", time_s=6 * 60 * 60),
        Label("gpu", "gpu"),
    )
}


@dataclass(frozen=True)
class Requests:
    """What a component asks of an executor (Nextflow ``cpus``, ``memory``, ``time``, ``accelerator``)."""

    cpus: int
    memory_gb: int
    time_s: int
    gpu: bool


def _largest(labels: list[str], attribute: str, default: str) -> int:
    values = [getattr(LABELS[name], attribute) for name in labels]
    return max((v for v in values if v is not None), default=getattr(LABELS[default], attribute))


def requests(labels: list[str]) -> Requests:
    """A component's resources from its labels: the largest per group (else lowcpu, lowmem, midtime)."""
    return Requests(
        cpus=_largest(labels, "cpus", "lowcpu"),
        memory_gb=_largest(labels, "memory_gb", "lowmem"),
        time_s=time_limit_s(labels),
        gpu="gpu" in labels,
    )


def time_limit_s(labels: list[str]) -> int:
    """Wall-time limit of a component from its labels (the longest time label; default midtime)."""
    limits = [LABELS[name].time_s for name in labels if LABELS[name].group == "time"]
    return max((t for t in limits if t is not None), default=LABELS["midtime"].time_s or 3600)


def task_time_limit_s(own_limit_s: float, executor_limit_s: float | None) -> float:
    """The time limit to enforce inside an executor's task that itself ends at ``executor_limit_s``.

    The component must stop (and be recorded as ``timeout``) before the executor
    kills the whole task, which would leave no record: keep a margin of 5% of the
    executor's limit, at least 30 s and at most 10 minutes.
    """
    if executor_limit_s is None or executor_limit_s <= 0:
        return own_limit_s
    margin = min(max(0.05 * executor_limit_s, 30.0), 600.0)
    return max(min(own_limit_s, executor_limit_s - margin), 0.5 * executor_limit_s)
