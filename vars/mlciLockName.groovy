/**
 * mlciLockName: the name of the Lockable Resources lock of one mlci environment,
 * 'mlci/<namespace>/<project>/<env>'. Lock names are controller-wide, and `project` comes from
 * each repository's mlci.yaml: without a namespace, a job in team B's folder writing `project: iris`
 * would take team A's iris locks. The namespace is the job's folder (JOB_NAME without the job, and
 * without the branch for a multibranch job), or MLCI_LOCK_NAMESPACE where the administrator sets it
 * (a folder property: e.g. a rollback job in another folder that must share the team's locks).
 * No parameter changes the namespace: a Jenkinsfile cannot name another team's lock. The project
 * and environment are checked (lower-case letters, digits, '-', as mlci validates them).
 *
 * Parameters (defaults in brackets):
 *   project   the `project` of mlci.yaml (required)
 *   env       environment name, e.g. 'production' (required)
 *
 * Returns the lock name.
 *
 * Example:
 *   lock(resource: mlciLockName(project: 'iris', env: 'production')) { ... }
 */
def call(Map config = [:]) {
    Map c = [project: '', env: ''] + config
    String checked = nameProblem('project', c.project) ?: nameProblem('env', c.env)
    if (checked) {
        error("mlciLockName: ${checked}")
    }
    return "mlci/${mlciJobFolder()}/${c.project}/${c.env}".toString()
}

/** Why VALUE cannot be part of a lock name, or null. */
@NonCPS
String nameProblem(String key, Object value) {
    String text = value == null ? '' : value.toString()
    if (!(text ==~ /[a-z0-9][a-z0-9-]{0,40}/)) {
        return "${key} '${value}' is not a valid mlci name (lower-case letters, digits and '-', at most 41; " +
            'it comes from mlci.yaml, which mlci validates the same way)'
    }
    return null
}
