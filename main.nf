#!/usr/bin/env nextflow
/*
 * scmib: the single-cell multimodal integration benchmark.
 *
 *   nextflow run main.nf -profile test,docker
 *   nextflow run main.nf -profile docker --outdir results --methods 'knn*,guanlab*'
 *
 * Parameters are described in nextflow_schema.json and the README.
 */

include { SCMIB } from './workflows/scmib'

workflow {
    main:
    def profiles = ['test', 'default', 'full']
    if (!(params.scmib_profile in profiles)) {
        error "--scmib_profile must be one of ${profiles}, not '${params.scmib_profile}'"
    }
    if (params.max_attempts < 1) {
        error "--max_attempts must be at least 1, not ${params.max_attempts}"
    }
    def mirror = params.data_mirror ? [file(params.data_mirror, checkIfExists: true, type: 'dir')] : []
    SCMIB(file("${projectDir}/components", checkIfExists: true, type: 'dir'), mirror)

    onComplete:
    log.info "scmib: ${workflow.success ? 'done' : 'stopped'}; results in ${params.outdir}/results"
}
