#!/usr/bin/env nextflow
/*
 * scmib: the single-cell multimodal integration benchmark.
 *
 *   nextflow run main.nf -profile test,docker
 *   nextflow run main.nf -profile docker --outdir results --methods 'knn*,guanlab*'
 *
 * Needs Nextflow 26.04 or newer (strict syntax, typed parameters). Parameters
 * are described in nextflow_schema.json and the README; Nextflow rejects an
 * undeclared one, `scmib plan` checks values against the schema.
 */

include { SCMIB } from './workflows/scmib'

params {
    // Output folder; its default is in nextflow.config, which writes the run's reports into it.
    outdir: String
    // test (starter cells, small parameters), default, full (adds the GEO NeurIPS data).
    scmib_profile: String = 'default'
    // Runs per stochastic method and control, each with its own seed (default: 1 under test and scale, else 3).
    seeds: Integer?
    // Component arguments instead of their spec defaults: 'multivi.max_epochs=200 knn_regression.n_neighbors=50'.
    component_args: String?
    // Comma-separated names or shell patterns; '!pattern' or the exclude_* parameters leave out.
    tasks: String?
    datasets: String?
    exclude_datasets: String?
    methods: String?
    exclude_methods: String?
    metrics: String?
    exclude_metrics: String?
    // Folder with copies of the source data (else loaders download them).
    data_mirror: String?
    // Attempts per job; a job killed for memory is retried with its memory times the attempt.
    max_attempts: Integer = 3
    publish_dir_mode: String = 'copy'
    // Component images: <container_registry>/<component id>:<container_tag>.
    container_registry: String = 'ghcr.io/scmib'
    container_tag: String = '0.1.0'
    // Give jobs with the gpu label a GPU (and, on Google Batch, of this accelerator type).
    gpu: Boolean = false
    gpu_type: String?
    // Caps on any one job's request (default: this machine for local runs; see nextflow.config).
    max_cpus: Integer?
    max_memory: String?
    max_time: String?
    // Added to every job's cluster options (e.g. '--account=lab') and container options (e.g. '-B /data').
    cluster_options: String?
    container_options: String?
    // Every job but the loaders runs without network (false where a cluster forbids the network
    // namespaces Apptainer/Singularity need for it).
    offline_jobs: Boolean = true
    // Let a run whose jobs failed for reasons of the infrastructure (no record) exit 0.
    ignore_infrastructure_errors: Boolean = false
}

workflow {
    main:
    def mirror = params.data_mirror ? [file(params.data_mirror, checkIfExists: true, glob: false)] : []
    SCMIB(mirror)

    onComplete:
    log.info "scmib: ${workflow.success ? 'done' : 'failed'}; results in ${params.outdir}/results"
}
