/*
 * The jobs of a run, planned by the same code as `scmib run`: every loader's
 * datasets, every task variant they support, every applicable method and
 * control, every metric. Components are discovered from their specs, so adding
 * a component folder is enough for the workflow to run it.
 */

process SCMIB_PLAN {
    tag "${params.scmib_profile}"
    container "ghcr.io/scmib/base:${params.scmib_version}"
    cpus 1
    memory 2.GB
    publishDir "${params.outdir}/pipeline_info", mode: params.publish_dir_mode

    input:
    path components

    output:
    path "plan.json", emit: plan

    script:
    def options = [
        params.tasks ? "--task '${params.tasks}'" : '',
        params.datasets ? "--datasets '${params.datasets}'" : '',
        params.exclude_datasets ? "--exclude_datasets '${params.exclude_datasets}'" : '',
        params.methods ? "--methods '${params.methods}'" : '',
        params.exclude_methods ? "--exclude_methods '${params.exclude_methods}'" : '',
        params.metrics ? "--metrics '${params.metrics}'" : '',
        params.exclude_metrics ? "--exclude_metrics '${params.exclude_metrics}'" : '',
        // Loaders read the mirror where the workflow stages it into their task folder.
        params.data_mirror ? "--data_mirror data_mirror" : '',
    ]
    """
    export SCMIB_REPO="\$PWD"
    scmib plan --profile ${params.scmib_profile} ${options.join(' ')} --output plan.json
    """
}
