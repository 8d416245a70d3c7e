/*
 * One job of an scmib plan: a dataset loader, a processor, a method or control
 * method, or a metric. The job's component runs in the image its spec names,
 * with the resources of its labels; `scmib job` records its outcome (success,
 * failed, not applicable = exit 99, timeout) in the job folder, the same record
 * the local runner writes, so a failing component never stops the workflow.
 * `scmib job` exits 137 only when the component was killed (out of memory) and
 * attempts remain, and the retry asks for more memory.
 */

process SCMIB_JOB {
    tag "${job.id}"
    container "${job.container}"
    cpus job.cpus
    memory 1.GB * job.memory_gb * task.attempt
    // Ten minutes beyond the component's own limit, so scmib records a timeout itself.
    time 1.s * (job.time_s + 600)
    accelerator job.gpu ? 1 : 0
    errorStrategy task.exitStatus == 137 && task.attempt < params.max_attempts ? 'retry' : 'ignore'
    maxRetries params.max_attempts
    publishDir "${params.outdir}/jobs", mode: params.publish_dir_mode

    input:
    tuple val(job), path(upstream), path(mirror, stageAs: 'data_mirror')
    path plan
    path components

    output:
    tuple val(job.id), path("${job.folder}"), emit: folder

    script:
    """
    # Inside a component image its own copy (SCMIB_REPO in the image); elsewhere the staged specs.
    export SCMIB_REPO="\${SCMIB_REPO:-\$PWD}"
    export SCMIB_CACHE_DIR="\${SCMIB_CACHE_DIR:-\$PWD/.scmib_cache}"
    export NUMBA_CACHE_DIR="\$PWD/.numba_cache" MPLCONFIGDIR="\$PWD/.matplotlib"
    scmib job --plan ${plan} --id '${job.id}' --attempt ${task.attempt} --max-attempts ${params.max_attempts}
    """
}
