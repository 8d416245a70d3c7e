/*
 * The scmib benchmark as a Nextflow workflow.
 *
 * SCMIB_PLAN lists the jobs (loaders, processors, methods and controls,
 * metrics) from the component specs; each stage below runs its jobs as soon as
 * the jobs whose files they read have succeeded; SCMIB_COLLECT writes the
 * results table and report. A job is routed to a stage by its `stage` field,
 * so every stage the planner produces must be listed in STAGE_ORDER.
 */

include { SCMIB_PLAN } from './modules/scmib_plan'
include { SCMIB_JOB as LOAD_DATASET } from './modules/scmib_job'
include { SCMIB_JOB as PROCESS_DATASET } from './modules/scmib_job'
include { SCMIB_JOB as RUN_METHOD } from './modules/scmib_job'
include { SCMIB_JOB as RUN_METRIC } from './modules/scmib_job'
include { SCMIB_COLLECT } from './modules/scmib_collect'

// Which workflow step runs each planned stage (checked against the planner by `scmib nf-check`).
def stageSteps() {
    return [
        ['load', 'LOAD_DATASET'],
        ['process', 'PROCESS_DATASET'],
        ['control_method', 'RUN_METHOD'],
        ['method', 'RUN_METHOD'],
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
        .map { _id, group, folders -> [group[0], folders, []] }
}

def succeededOnly(folders) {
    return folders.filter { _id, folder -> jobStatus(folder) == 'success' }
}

workflow SCMIB {
    take:
    components  // path: the components/ folder (specs, scripts)
    mirror      // list: [] or [folder with copies of the source data]

    main:
    SCMIB_PLAN(components)
    plan = SCMIB_PLAN.out.plan
    jobs = plan.splitJson(path: 'jobs')

    loads = jobs
        .filter { job -> job.stage in stagesOf('LOAD_DATASET') }
        .map { job -> [job, [], mirror] }
    LOAD_DATASET(loads, plan, components)
    loaded = succeededOnly(LOAD_DATASET.out.folder)

    PROCESS_DATASET(withSources(jobs, stagesOf('PROCESS_DATASET'), loaded), plan, components)
    processed = succeededOnly(PROCESS_DATASET.out.folder)

    RUN_METHOD(withSources(jobs, stagesOf('RUN_METHOD'), processed), plan, components)
    predicted = succeededOnly(RUN_METHOD.out.folder)

    RUN_METRIC(withSources(jobs, stagesOf('RUN_METRIC'), processed.mix(predicted)), plan, components)

    folders = LOAD_DATASET.out.folder
        .mix(PROCESS_DATASET.out.folder, RUN_METHOD.out.folder, RUN_METRIC.out.folder)
        .map { _id, folder -> folder }
        .collect()
    SCMIB_COLLECT(plan, folders, components)

    emit:
    results = SCMIB_COLLECT.out.results
    plan = plan
}
