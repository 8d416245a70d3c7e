/*
 * One job of an scmib plan: a dataset loader, a processor, a method or control
 * method, a prediction processor, or a metric. The job's component runs in the image its plan entry
 * names, with the resources of its labels; `scmib job` records its outcome
 * (success, failed, not applicable, timeout, oom) in the job folder and in a
 * small record folder, the same record the local runner writes, so a failing
 * component never stops the workflow.
 *
 * The task's cache key is exactly its own: the job's plan entry (a value that
 * holds the content key of its component folder, parameters and upstream jobs),
 * its own component folder and its upstream jobs' folders. Editing one method
 * re-runs that method's jobs and their metrics, nothing else.
 */

include { retryOrIgnore; attemptMemory; taskTime; seconds } from './functions'

process SCMIB_JOB {
    tag "${job.id}"
    container job.container
    cpus job.cpus
    memory attemptMemory(job.memory_gb, task.attempt)
    time taskTime(job.time_s)
    accelerator job.accelerator
    containerOptions job.container_options
    clusterOptions job.cluster_options
    // maxRetries holds --max_attempts (retryOrIgnore stops there, below Nextflow's own limit). Read as
    // task.maxRetries, not params.max_attempts: parameters a script uses are part of its cache key.
    maxRetries params.max_attempts
    errorStrategy retryOrIgnore(task.exitStatus, task.attempt, task.maxRetries)
    publishDir params.outdir, mode: params.publish_dir_mode, pattern: 'jobs/*'

    input:
    tuple val(job), path(upstream), path(component, stageAs: 'component'), path(mirror, stageAs: 'data_mirror')

    output:
    tuple val(job.id), path(job.folder), emit: folder
    path "jobs/${job.folder}", emit: record

    script:
    // The entry travels as JSON in a quoted here-document: nothing in it reaches the shell.
    // Numba's compiled graph code: the image's filled cache, else one shared by the user's tasks
    // (numba skips a cache folder it cannot write).
    """
    cat > job.json <<'SCMIB_JOB_ENTRY'
    ${job.entry_json}
    SCMIB_JOB_ENTRY
    export SCMIB_CACHE_DIR="\${SCMIB_CACHE_DIR:-\$PWD/.scmib_cache}"
    export NUMBA_CACHE_DIR="\${NUMBA_CACHE_DIR:-\${HOME:-\$PWD}/.cache/scmib/numba}" MPLCONFIGDIR="\$PWD/.matplotlib"
    scmib job --job job.json --component component --record jobs \\
        --attempt ${task.attempt} --max-attempts ${task.maxRetries} \\
        --task-time-s ${seconds(task.time)} --threads ${task.cpus}
    """

    stub:
    // Wiring only: every job "succeeds" without running its component.
    """
    mkdir -p ${job.folder} jobs/${job.folder}
    echo success > ${job.folder}/.job.status
    echo success > jobs/${job.folder}/.job.status
    """
}
