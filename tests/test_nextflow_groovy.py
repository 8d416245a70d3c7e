"""The workflow's Groovy, run by a real Groovy runtime on the values Nextflow hands it.

The expressions are read from the ``.nf`` and ``.config`` files as written
(the functions of ``workflows/modules/functions.nf``, the directive lines of
``scmib_job.nf`` that call them, the options of ``nextflow.config``) and
evaluated with typed values and with the strings Nextflow's command line
gives under its strict syntax.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import REPO

from scmib.nextflow.groovy import config_expression, directive_expression, function_source, run_groovy
from scmib.nextflow.params import load_schema, validate_params

FUNCTIONS = (REPO / "workflows/modules/functions.nf").read_text()
JOB_MODULE = (REPO / "workflows/modules/scmib_job.nf").read_text()
CONFIG = (REPO / "nextflow.config").read_text()
NAMES = ("shellQuote", "paramArgs", "retryOrIgnore", "attemptMemory", "taskTime", "seconds")
DEFINITIONS = "\n".join(function_source(FUNCTIONS, name) for name in NAMES)


@pytest.fixture(scope="module")
def groovy(jar_or_skip):
    def run(body: str) -> list[str]:
        """Run ``body`` after the workflow's functions; each printed value ends with a NUL."""
        return run_groovy(DEFINITIONS + "\n" + body, jar_or_skip).split("\0")[:-1]

    return run


@pytest.fixture(scope="module")
def jar_or_skip():
    from scmib.nextflow.language_server import default_jar_path

    path = default_jar_path()
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"no Nextflow language server at {path}: .ci/run fetches it")
        pytest.skip("Nextflow language server not fetched (scmib nf-check --fetch)")
    return path


def groovy_string(value: str) -> str:
    """A Groovy single-quoted string literal of ``value``."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


HOSTILE = [
    "knn'$(touch PWNED)'",
    "`touch PWNED`",
    "a; touch PWNED",
    '"$HOME" \\ \\\\ *',
    "line one\nline two\nSCMIB_JOB_ENTRY",
    "ünïcode ✓",
    "",
]


def test_shell_quote_survives_every_hostile_value(groovy, tmp_path):
    quoted = groovy("".join(f"print(shellQuote({groovy_string(v)}) + '\\0')\n" for v in HOSTILE))
    script = "printf '%s\\0' " + " ".join(quoted)
    out = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split("\0")[:-1] == HOSTILE
    assert not (tmp_path / "PWNED").exists()


def test_param_args_reach_scmib_plan_intact_and_typed(groovy, tmp_path):
    """Typed values (Integer, Boolean), strings with quotes, and nulls (left out) through bash to Python."""
    args = groovy(
        "def params = [max_attempts: 3, gpu: true, methods: " + groovy_string("knn*,it's") + ", "
        "datasets: null, scmib_profile: 'test', exclude_methods: " + groovy_string("$(touch PWNED)") + "]\n"
        "print(paramArgs(params) + '\\0')\n"
    )[0]
    words = subprocess.run(
        ["bash", "-c", f"printf '%s\\0' {args}"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split("\0")[:-1]
    pairs = dict(w.split("=", 1) for w in words[1::2])
    assert words[::2] == ["--param"] * len(pairs)
    assert pairs == {
        "max_attempts": "3",
        "gpu": "true",
        "methods": "knn*,it's",
        "scmib_profile": "test",
        "exclude_methods": "$(touch PWNED)",
    }
    typed = validate_params(pairs, load_schema(REPO))
    assert (typed["max_attempts"], typed["gpu"], typed["datasets"]) == (3, True, None)
    assert not (tmp_path / "PWNED").exists()


def test_error_strategy_retries_only_memory_kills_and_lost_vms(groovy):
    """`errorStrategy` as scmib_job.nf writes it, for exit codes and attempts as Nextflow gives them."""
    expression = directive_expression(JOB_MODULE, "errorStrategy")
    assert expression == (
        "retryOrIgnore(task.exitStatus, task.attempt, task.maxRetries, "
        "task.memory < attemptMemory(job.memory_gb, task.attempt))"
    )
    # maxRetries holds --max_attempts, so the script never reads a parameter (part of the cache key).
    assert directive_expression(JOB_MODULE, "maxRetries") == "params.max_attempts"
    google_batch = [50000, 50001, 50002, 50004, 50005, 50006, 50007]
    exits = [0, 1, 2, 99, 125, 127, 137, 143, *google_batch, 2147483647, None]
    # The task's memory: its request (16 GB x the attempt), or less where resourceLimits capped it.
    cases = [(e, a, m, c) for e in exits for a in (1, 2, 3) for m in (3, "3") for c in (False, True)]
    body = "".join(
        f"task = [exitStatus: {'null' if e is None else e}, attempt: {a}, maxRetries: {json.dumps(m)}, "
        f"memory: new MemoryUnit('{16 * a - 6 if c else 16 * a} GB')]\n"
        f"print({expression} + '\\0')\n"
        for e, a, m, c in cases
    )
    got = dict(zip(cases, groovy("def task\ndef job = [memory_gb: 16]\n" + body), strict=True))
    for (exit_status, attempt, max_attempts, capped), action in got.items():
        # Google Batch's reserved exits: a lost VM is retried, 50005 (its own time limit) is not.
        retryable = (exit_status == 137 and not capped) or exit_status in (50001, 50002, 50003, 50004, 50006)
        expected = "retry" if retryable and attempt < int(max_attempts) else "ignore"
        assert action == expected, (exit_status, attempt, max_attempts, capped)
    # The last attempt is never "retry" (above): past maxRetries Nextflow would stop the whole run.


def test_ext_gpu_is_a_map_resolved_per_task(groovy):
    """``task.ext.gpu``, as a site config's ``queue`` reads it. Nextflow keeps ``ext`` a map (its
    closures resolved per task) only if nothing outside a closure names a variable: evaluated
    where no ``job`` exists, the map must still be made; its value then comes from each task."""
    expression = directive_expression(JOB_MODULE, "ext")
    cases = [(job, run) for job in (True, False) for run in (True, False)]
    body = f"def ext = [{expression}]\nassert ext instanceof Map && ext.gpu instanceof Closure\n" + "".join(
        "value = ext.gpu.rehydrate("
        f"[job: [gpu: {str(job).lower()}], params: [gpu: {str(run).lower()}]], null, null)\n"
        "value.resolveStrategy = Closure.DELEGATE_ONLY\n"
        "print(value.call().toString() + '\\0')\n"
        for job, run in cases
    )
    got = groovy("def value\n" + body)
    assert got == [str(job and run).lower() for job, run in cases]


def test_memory_time_and_task_time_directives(groovy):
    memory = directive_expression(JOB_MODULE, "memory")
    time = directive_expression(JOB_MODULE, "time")
    got = groovy(
        "def job = [memory_gb: 16, time_s: 3600]\n"
        "def task = [attempt: 2]\n"
        f"print(({memory}).toString() + '\\0')\n"
        f"print(({time}).toString() + '\\0')\n"
        "job = [memory_gb: '4', time_s: '600']\n"  # as strings too
        "task = [attempt: '3']\n"
        f"print(({memory}).toString() + '\\0')\n"
        f"print(({time}).toString() + '\\0')\n"
        "print(seconds(new Duration('4200s')).toString() + '\\0')\n"
        "print(seconds(null).toString() + '\\0')\n"
    )
    assert got == [
        "MemoryUnit(32 GB)",
        "Duration(4200s)",
        "MemoryUnit(12 GB)",
        "Duration(1200s)",
        "4200",
        "0",
    ]


def test_fail_on_ignore_follows_the_parameter_however_it_is_given(groovy):
    expression = config_expression(CONFIG, "workflow.failOnIgnore")
    values = ["null", "true", "false", "'true'", "'false'"]
    got = groovy(
        "def params\n"
        + "".join(
            f"params = [ignore_infrastructure_errors: {v}]\nprint(({expression}).toString() + '\\0')\n"
            for v in values
        )
    )
    # Fail on ignored (infrastructure) failures unless the parameter is true, as a Boolean or a string.
    assert got == ["true", "false", "true", "false", "true"]


def test_plan_and_collect_tasks_get_the_users_cluster_options(groovy):
    """The plan and collect tasks' ``clusterOptions`` (each job's come from its plan entry)."""
    for module in ("scmib_plan", "scmib_collect"):
        text = (REPO / f"workflows/modules/{module}.nf").read_text()
        expression = directive_expression(text, "clusterOptions")
        values = ["null", "''", groovy_string("--account=lab --qos='x y'")]
        got = groovy(
            "def params\n"
            + "".join(
                f"params = [cluster_options: {v}]\nprint(({expression}).toString() + '\\0')\n" for v in values
            )
        )
        assert got == ["", "", "--account=lab --qos='x y'"], module


def profile_block(name: str) -> str:
    start = CONFIG.index(f"\n    {name} {{")
    return CONFIG[start : CONFIG.index("\n    }", start)]


@pytest.mark.parametrize(
    ("where", "given", "expected"),
    [
        ("top", {}, "[cpus:4, memory:MemoryUnit(24 GB), time:24.h]"),
        ("top", {"max_cpus": "'8'", "max_memory": "'16.GB'"}, "[cpus:8, memory:16.GB, time:24.h]"),
        ("test", {}, "[cpus:2, memory:MemoryUnit(6 GB), time:1.h]"),
        ("test", {"max_time": "'2.h'"}, "[cpus:2, memory:MemoryUnit(6 GB), time:2.h]"),
        ("small", {}, "[cpus:1, memory:MemoryUnit(3 GB), time:1.h]"),
        ("slurm", {"max_cpus": "64"}, "[cpus:64, memory:256 GB, time:48.h]"),
    ],
)
def test_resource_limits_default_to_the_machine_or_the_profile(groovy, where, given, expected):
    """Caps by `resourceLimits`: this machine's for local runs (the local executor would stop the run
    at the first larger request; the test profile's never exceed it either), the profile's
    otherwise, --max_* where given (strings or numbers)."""
    block = CONFIG if where == "top" else profile_block("test" if where == "small" else where)
    expression = config_expression(block, "resourceLimits" if where == "top" else "process.resourceLimits")
    # Stand-in for the machine, as nextflow.util.SysHelper reports it: 4 CPUs and 24 GB (or 1 and 3).
    cpus, memory = ("1", "3 GB") if where == "small" else ("4", "24 GB")
    expression = expression.replace("nextflow.util.SysHelper.getAvailCpus()", cpus)
    expression = expression.replace("nextflow.util.SysHelper.getAvailMemory()", f"new MemoryUnit('{memory}')")
    params = "[" + ", ".join(f"{k}: {v}" for k, v in given.items()) + "]" if given else "[:]"
    assert groovy(f"def params = {params}\nprint(({expression}).toString() + '\\0')\n") == [expected]


def test_the_workflow_hands_scmib_plan_what_it_checks(tmp_path):
    """Unknown and mistyped parameters stop the run at the plan, with the closest name."""
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(REPO / "components", repo / "components")
    shutil.copy(REPO / "nextflow_schema.json", repo)
    cmd = [sys.executable, "-m", "scmib.cli", "plan", "--param", "method=knn", "--param", "max_attempts=many"]
    proc = subprocess.run(
        cmd, cwd=repo, capture_output=True, text=True, env={**os.environ, "SCMIB_REPO": str(repo)}
    )
    assert proc.returncode == 2
    assert "unknown parameter --method (did you mean --methods?)" in proc.stderr
    assert "--max_attempts must be a whole number, not 'many'" in proc.stderr


def test_scripts_quote_every_value_they_interpolate():
    """Task scripts interpolate only numbers, staged file names and values passed through shellQuote."""
    for path in sorted((REPO / "workflows").rglob("*.nf")):
        text = path.read_text()
        for block in text.split('"""')[1::2]:
            for expression in re.findall(r"(?<!\\)\$\{([^}]*)\}", block):
                allowed = expression.startswith(("shellQuote(", "seconds(", "task.")) or expression in {
                    "param_args",
                    "plan",
                    "job.entry_json",
                    "job.folder",
                }
                assert allowed, f"{path.name}: ${{{expression}}} reaches a shell unquoted"


def numba_cache_lines() -> str:
    """The job script's lines that choose numba's cache folder, as bash runs them."""
    start = JOB_MODULE.index("    export NUMBA_CACHE_DIR=")
    end = JOB_MODULE.index("    fi\n", start) + len("    fi\n")
    return JOB_MODULE[start:end].replace("\\$", "$")


def chosen_numba_cache(folder, **env: str) -> str:
    script = numba_cache_lines() + 'printf %s "$NUMBA_CACHE_DIR"'
    environment = {"PATH": os.environ["PATH"], "HOME": str(folder), **env}
    return subprocess.run(
        ["bash", "-c", script], cwd=folder, env=environment, capture_output=True, text=True, check=True
    ).stdout


def test_a_job_uses_the_images_numba_cache_or_a_writable_copy(tmp_path):
    image_cache = tmp_path / "image_cache"
    image_cache.mkdir()
    (image_cache / "index.nbi").write_text("compiled")
    # Writable (Docker, where the image makes it so): used as it is.
    assert chosen_numba_cache(tmp_path, NUMBA_CACHE_DIR=str(image_cache)) == str(image_cache)
    # None set: one under the home folder, shared by the user's tasks.
    assert chosen_numba_cache(tmp_path) == str(tmp_path / ".cache/scmib/numba")
    # One that cannot be made (no home mounted): a folder of the task's own.
    task = tmp_path / "task"
    task.mkdir()
    assert chosen_numba_cache(task, NUMBA_CACHE_DIR="/proc/none/numba") == str(task / ".numba_cache")
    assert (task / ".numba_cache").is_dir()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write a read-only folder")
def test_a_read_only_numba_cache_is_copied_into_the_task(tmp_path):
    image_cache = tmp_path / "image_cache"
    image_cache.mkdir()
    (image_cache / "index.nbi").write_text("compiled")
    image_cache.chmod(0o555)  # as in a Singularity or Apptainer image
    try:
        got = chosen_numba_cache(tmp_path, NUMBA_CACHE_DIR=str(image_cache))
    finally:
        image_cache.chmod(0o755)
    assert got == str(tmp_path / ".numba_cache")
    assert (tmp_path / ".numba_cache" / "index.nbi").read_text() == "compiled"
    assert os.access(tmp_path / ".numba_cache", os.W_OK)
