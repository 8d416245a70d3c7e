"""How a workflow task runs a job: container options, GPU requests, cluster options.

Decided here (tested) rather than in the workflow's Groovy: ``scmib plan``
writes them into each job's plan entry, and the job process passes them
through (``containerOptions``, ``accelerator``, ``clusterOptions``).

- Only dataset loaders have network, as in the competition, where submissions
  ran offline: Docker and Podman get ``--network none``, Singularity and
  Apptainer ``--net --network none`` (the one network type they allow an
  unprivileged user, where the host lets users make network namespaces; a run
  on a cluster that does not turns it off: ``--offline_jobs false``). Without
  a container engine nothing isolates a job.
- A job with the ``gpu`` label gets a GPU only when the run asks for GPUs
  (``--gpu``): ``--gpus all`` (Docker), CDI ``--device nvidia.com/gpu=all``
  (Podman), ``--nv`` (Singularity, Apptainer), ``--gres=gpu:1`` (SLURM) and an
  ``accelerator`` request (cloud batch executors; none for the others, which
  ignore it). Every other job requests none: no ``accelerator 0``.
- The user's ``--container_options`` and ``--cluster_options`` follow the
  job's own: the process sets both directives, so a site config's
  ``process.clusterOptions`` would not reach the jobs.
- AWS Batch passes only a few container options on (not ``--network`` or
  ``--gpus``): there, jobs are not isolated from the network, and GPUs come
  from the ``accelerator`` request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scmib.errors import ScmibError

DOCKER_LIKE = ("docker", "podman")
SINGULARITY_LIKE = ("singularity", "apptainer")
#: Executors that act on the ``accelerator`` directive.
ACCELERATOR_EXECUTORS = ("awsbatch", "google-batch", "k8s", "azurebatch")


@dataclass(frozen=True)
class Execution:
    """Where a workflow runs: its container engine (``none`` without one), executor, GPU wish, the
    user's own container and cluster options (added to every job's), and whether jobs other than
    the loaders run without network (``offline_jobs``)."""

    engine: str = "none"
    executor: str = "local"
    gpu: bool = False
    gpu_type: str | None = None
    container_options: str | None = None
    cluster_options: str | None = None
    offline_jobs: bool = True

    def __post_init__(self) -> None:
        if self.gpu and self.executor == "google-batch" and not self.gpu_type:
            raise ScmibError("--gpu on Google Batch needs --gpu_type (e.g. nvidia-tesla-t4)")


def task_options(execution: Execution, network: bool, wants_gpu: bool) -> dict[str, Any]:
    """``container_options``, ``accelerator`` and ``cluster_options`` of one job."""
    gpu = wants_gpu and execution.gpu
    network = network or not execution.offline_jobs
    container: list[str] = []
    if execution.engine in DOCKER_LIKE:
        if not network:
            container += ["--network", "none"]
        if gpu:
            # Podman reaches NVIDIA GPUs through CDI.
            podman = ["--device", "nvidia.com/gpu=all"]
            container += ["--gpus", "all"] if execution.engine == "docker" else podman
    elif execution.engine in SINGULARITY_LIKE:
        if not network:
            container += ["--net", "--network", "none"]
        if gpu:
            container.append("--nv")
    accelerator: dict[str, Any] | None = None
    if gpu and execution.executor in ACCELERATOR_EXECUTORS:
        accelerator = {"limit": 1, **({"type": execution.gpu_type} if execution.gpu_type else {})}
    cluster = ["--gres=gpu:1"] if gpu and execution.executor == "slurm" else []
    return {
        "container_options": " ".join([*container, *filter(None, [execution.container_options])]),
        "accelerator": accelerator,
        "cluster_options": " ".join([*cluster, *filter(None, [execution.cluster_options])]),
    }
