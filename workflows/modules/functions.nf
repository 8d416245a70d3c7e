/*
 * The few decisions the workflow makes in Groovy, as plain functions so that
 * the tests can run them (tests/test_nextflow_groovy.py evaluates them with
 * the Groovy runtime inside Nextflow's language server). Everything else is
 * decided by `scmib plan`, `scmib job` and `scmib collect`.
 */

// One shell word, whatever `value` holds: single quotes, with each ' written as '\''.
def shellQuote(value) {
    return "'" + value.toString().replace("'", "'\\''") + "'"
}

// `--param name=value` options for `scmib plan`, which checks them against nextflow_schema.json.
def paramArgs(values) {
    return values
        .findAll { _name, value -> value != null }
        .collect { name, value -> '--param ' + shellQuote("${name}=${value}") }
        .join(' ')
}

/*
 * What to do with a task that exited non-zero. `scmib job` exits 0 whenever it
 * recorded the outcome (a failing component never stops the run), and 137 when
 * the component was killed for memory with attempts left. 137 from the executor
 * itself, and a lost Google Batch VM (reserved exits 50001-50004 and 50006: spot
 * preemption, VM unresponsive or rebooted or recreated) get another attempt. 50005
 * is Batch's own time limit (`maxRunDuration`, which Nextflow sets from `time`):
 * another attempt would run as long again, so it is not retried. Anything else
 * (image pull, staging, exit 127) is an infrastructure failure: ignored, so the
 * rest of the run and the collection go on, and recorded as such.
 * A memory kill is not retried when `resourceLimits` already held the task below
 * its request (`capped`): every later attempt would get the same memory.
 */
def retryOrIgnore(exitStatus, attempt, maxAttempts, capped) {
    def lostVm = exitStatus in [50001, 50002, 50003, 50004, 50006]
    def retryable = (exitStatus == 137 && !capped) || lostVm
    return retryable && (attempt as int) < (maxAttempts as int) ? 'retry' : 'ignore'
}

// Memory of an attempt: the job's own times the attempt number (`resourceLimits` caps it).
def attemptMemory(memoryGb, attempt) {
    return "${(memoryGb as int) * (attempt as int)} GB" as MemoryUnit
}

// The executor's time limit: the job's own plus ten minutes, so `scmib job` records a timeout itself.
def taskTime(timeS) {
    return "${(timeS as int) + 600}s" as Duration
}

// The executor's time limit in seconds as `scmib job` reads it (0: none).
def seconds(duration) {
    return duration ? duration.toSeconds() : 0
}
