/*
 * The results table, per-method scores, summary, resources and HTML report of
 * the run, written by the same `scmib` code as a local run (`scmib collect`).
 * Jobs without a folder are recorded as stopped by the executor or skipped.
 */

process SCMIB_COLLECT {
    tag "${params.outdir}"
    container "ghcr.io/scmib/base:${params.scmib_version}"
    cpus 1
    memory 4.GB
    publishDir "${params.outdir}", mode: params.publish_dir_mode

    input:
    path plan
    path folders, stageAs: 'jobs/*'
    path components

    output:
    path "results", emit: results

    script:
    """
    export SCMIB_REPO="\$PWD"
    scmib collect --plan ${plan} --jobs jobs --outdir .
    """
}
