/*
 * The results table, per-method scores, summary, resources and HTML report of
 * the run, written by the same `scmib` code as a local run (`scmib collect`).
 * It reads only the jobs' record folders (record, status, log, score files),
 * never datasets or predictions. It always runs, also when no job produced a
 * record: a planned job without one is recorded as skipped (a source failed)
 * or as an infrastructure failure.
 */

process SCMIB_COLLECT {
    tag "${params.outdir}"
    container "${params.container_registry}/base:${params.container_tag}"
    cpus 1
    memory 4.GB
    cache false
    // --cluster_options reach this task too (an --account the cluster requires), as every job's.
    clusterOptions "${params.cluster_options ?: ''}"
    errorStrategy 'terminate'
    publishDir params.outdir, mode: params.publish_dir_mode

    input:
    path plan
    path records, stageAs: 'jobs/*'
    path components

    output:
    path "results", emit: results

    script:
    """
    export SCMIB_REPO="\$PWD"
    mkdir -p jobs
    scmib collect --plan ${plan} --jobs jobs --outdir .
    """

    stub:
    """
    mkdir -p results
    touch results/results.tsv results/runs.tsv
    """
}
