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
 * its own component folder and its upstream jobs' folders (by name and size:
 * `cache 'lenient'`). Editing one method re-runs that method's jobs and their
 * metrics, nothing else.
 */

include { retryOrIgnore; attemptMemory; taskTime; seconds } from './functions'

process SCMIB_JOB {
    tag "${job.id}"
    container job.container
    cpus job.cpus
    memory attemptMemory(job.memory_gb, task.attempt)
    time taskTime(job.time_s)
    accelerator job.accelerator
    // Whether this task asks for a GPU, for a site config to choose its queue:
    // process { queue = { task.ext.gpu ? 'gpu' : 'cpu' } }
    // The value is a closure: a map naming `job` outside one would be made a closure as a whole by
    // the strict parser, and `task.ext` would then be that closure, not a map (no `task.ext.gpu`).
    ext gpu: { job.gpu && params.gpu }
    containerOptions job.container_options
    clusterOptions job.cluster_options
    // maxRetries holds --max_attempts (retryOrIgnore stops there, below Nextflow's own limit). Read as
    // task.maxRetries, not params.max_attempts: parameters a script uses are part of its cache key.
    maxRetries params.max_attempts
    // Staged files count by path and size, not timestamps: an upstream job's folder is named by
    // its task's own hash, and the component's content is in the entry's key (the staged
    // component folder's own hash no longer reflects its files at all); a timestamp (an editor's
    // swap file in the component folder, a shared file system, a touched mirror) says nothing
    // about what the job reads.
    cache 'lenient'
    errorStrategy retryOrIgnore(task.exitStatus, task.attempt, task.maxRetries, task.memory < attemptMemory(job.memory_gb, task.attempt))
    publishDir params.outdir, mode: params.publish_dir_mode, pattern: 'jobs/*'

    input:
    tuple val(job), path(upstream), path(component, stageAs: 'component'), path(mirror, stageAs: 'data_mirror')

    output:
    tuple val(job.id), path(job.folder), emit: folder
    path "jobs/${job.folder}", emit: record

    script:
    // The entry travels as JSON in a quoted here-document: nothing in it reaches the shell.
    // Numba's compiled graph code: the image's filled cache, else one shared by the user's tasks.
    // Numba uses only a cache folder it can write: where that one is read-only (a Singularity or
    // Apptainer image, a home that is not mounted), a copy of it in the task's folder.
    """
    cat > job.json <<'SCMIB_JOB_ENTRY'
    ${job.entry_json}
    SCMIB_JOB_ENTRY
    export SCMIB_CACHE_DIR="\${SCMIB_CACHE_DIR:-\$PWD/.scmib_cache}"
    export NUMBA_CACHE_DIR="\${NUMBA_CACHE_DIR:-\${HOME:-\$PWD}/.cache/scmib/numba}" MPLCONFIGDIR="\$PWD/.matplotlib"
    if ! mkdir -p "\$NUMBA_CACHE_DIR" 2>/dev/null || ! [ -w "\$NUMBA_CACHE_DIR" ]; then
        cp -R "\$NUMBA_CACHE_DIR" .numba_cache 2>/dev/null; mkdir -p .numba_cache; chmod -R u+w .numba_cache
        export NUMBA_CACHE_DIR="\$PWD/.numba_cache"
    fi
    scmib job --job job.json --component component --record jobs \\
        --attempt ${task.attempt} --max-attempts ${task.maxRetries} \\
        --task-time-s ${seconds(task.time)} --threads ${task.cpus} --task-memory-mb ${task.memory.toMega()}
    """

    stub:
    // Wiring only: every job "succeeds" without running its component.
    """
    mkdir -p ${job.folder} jobs/${job.folder}
    echo success > ${job.folder}/.job.status
    echo success > jobs/${job.folder}/.job.status
    """
}
