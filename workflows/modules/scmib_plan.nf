/*
 * The jobs of a run, planned by the same code as `scmib run`: every loader's
 * datasets, every task variant they support, every applicable method and
 * control, every metric. Components are discovered from their specs, so adding
 * a component folder is enough for the workflow to run it. `scmib plan` first
 * checks the run's parameters against nextflow_schema.json (types, ranges,
 * unknown names) and stops the run with a clear message if one is wrong.
 *
 * Never cached: the plan is cheap and must see the components as they are now.
 * The jobs' own cache keys do not depend on it (see scmib_job.nf).
 */

include { shellQuote } from './functions'

process SCMIB_PLAN {
    tag "${params.scmib_profile}"
    container "${params.container_registry}/base:${params.container_tag}"
    cpus 1
    memory 2.GB
    cache false
    // --cluster_options reach this task too (an --account the cluster requires), as every job's.
    clusterOptions "${params.cluster_options ?: ''}"
    errorStrategy 'terminate'
    publishDir "${params.outdir}/pipeline_info", mode: params.publish_dir_mode

    input:
    path components
    path schema
    val param_args
    val container_engine

    output:
    path "plan.json", emit: plan

    script:
    """
    export SCMIB_REPO="\$PWD"
    scmib plan ${param_args} --container-engine ${shellQuote(container_engine)} \\
        --executor ${shellQuote(task.executor ?: 'local')} --output plan.json
    """

    stub:
    // The real plan: a stub run wires the real jobs, whose own stubs then run no component.
    """
    export SCMIB_REPO="\$PWD"
    scmib plan ${param_args} --container-engine ${shellQuote(container_engine)} \\
        --executor ${shellQuote(task.executor ?: 'local')} --output plan.json
    """
}
