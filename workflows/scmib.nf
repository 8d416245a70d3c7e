/*
 * The scmib benchmark as a Nextflow workflow.
 *
 * SCMIB_PLAN lists the jobs (loaders, processors, methods and controls,
 * prediction processors, metrics) from the component specs; each stage below runs its jobs as soon as
 * the jobs whose files they read have succeeded; SCMIB_COLLECT writes the
 * results table and report, always, from the jobs' record folders. A job is
 * routed to a stage by its `stage` field, so every stage the planner produces
 * must be listed in stageSteps() (checked by `scmib nf-check`).
 */

include { SCMIB_PLAN } from './modules/scmib_plan'
include { SCMIB_JOB as LOAD_DATASET } from './modules/scmib_job'
include { SCMIB_JOB as PROCESS_DATASET } from './modules/scmib_job'
include { SCMIB_JOB as RUN_METHOD } from './modules/scmib_job'
include { SCMIB_JOB as PREPARE_PREDICTION } from './modules/scmib_job'
include { SCMIB_JOB as RUN_METRIC } from './modules/scmib_job'
include { SCMIB_COLLECT } from './modules/scmib_collect'
include { paramArgs } from './modules/functions'

// Which workflow step runs each planned stage (checked against the planner by `scmib nf-check`).
def stageSteps() {
    return [
        ['load', 'LOAD_DATASET'],
        ['process', 'PROCESS_DATASET'],
        ['control_method', 'RUN_METHOD'],
        ['method', 'RUN_METHOD'],
        ['prepare', 'PREPARE_PREDICTION'],
        ['metric', 'RUN_METRIC'],
    ]
}

def stagesOf(step) {
    return stageSteps().findAll { pair -> pair[1] == step }.collect { pair -> pair[0] }
}

// The recorded outcome of a job folder (written by `scmib job`).
def jobStatus(folder) {
    return folder.resolve('.job.status').text.trim()
}

// The job's own component folder: staged alone, so only its own files are in its cache key.
def componentFolder(job) {
    return file("${projectDir}/components/${job.component}", checkIfExists: true, glob: false)
}

/*
 * Jobs of `stages`, each with the folders of the jobs it reads from, emitted
 * once all of those succeeded. Jobs with a failed source never start;
 * `scmib collect` records them as skipped.
 */
def withSources(jobs, stages, succeeded) {
    return jobs
        .filter { job -> job.stage in stages }
        .flatMap { job -> job.sources.collect { source -> [source, job] } }
        .combine(succeeded, by: 0)
        .map { _source, job, folder -> [groupKey(job.id, job.sources.size()), job, folder] }
        .groupTuple()
        .filter { _id, group, folders -> folders.size() == group[0].sources.size() }
        // Sorted: the order of staged files is part of the cache key, the order they arrived in is not.
        .map { _id, group, folders -> [group[0], folders.toSorted { f -> f.name }, componentFolder(group[0]), []] }
}

def succeededOnly(folders) {
    return folders.filter { _id, folder -> jobStatus(folder) == 'success' }
}

workflow SCMIB {
    take:
    mirror  // list: [] or [folder with copies of the source data]

    main:
    components = file("${projectDir}/components", checkIfExists: true, glob: false)
    schema = file("${projectDir}/nextflow_schema.json", checkIfExists: true, glob: false)
    SCMIB_PLAN(components, schema, paramArgs(params), workflow.containerEngine ?: 'none')
    plan = SCMIB_PLAN.out.plan
    jobs = plan.splitJson(path: 'jobs')

    loads = jobs
        .filter { job -> job.stage in stagesOf('LOAD_DATASET') }
        .map { job -> [job, [], componentFolder(job), mirror] }
    LOAD_DATASET(loads)
    loaded = succeededOnly(LOAD_DATASET.out.folder)

    PROCESS_DATASET(withSources(jobs, stagesOf('PROCESS_DATASET'), loaded))
    processed = succeededOnly(PROCESS_DATASET.out.folder)

    RUN_METHOD(withSources(jobs, stagesOf('RUN_METHOD'), processed))
    predicted = succeededOnly(RUN_METHOD.out.folder)

    PREPARE_PREDICTION(withSources(jobs, stagesOf('PREPARE_PREDICTION'), processed.mix(predicted)))
    prepared = succeededOnly(PREPARE_PREDICTION.out.folder)

    RUN_METRIC(withSources(jobs, stagesOf('RUN_METRIC'), processed.mix(predicted).mix(prepared)))

    // One channel per mix: the typed Channel API (nf-lang) declares mix with a single argument.
    // toList() emits a list even when no job produced a record, so the collection always runs.
    records = LOAD_DATASET.out.record
        .mix(PROCESS_DATASET.out.record)
        .mix(RUN_METHOD.out.record)
        .mix(PREPARE_PREDICTION.out.record)
        .mix(RUN_METRIC.out.record)
        .toList()
    SCMIB_COLLECT(plan, records, components)

    emit:
    results = SCMIB_COLLECT.out.results
    plan = plan
}
