/**
 * mlciLock: runs a body while holding the lock of one mlci environment, 'mlci-<project>-<env>'
 * (Lockable Resources), so two builds never deploy to or roll back the same environment at once.
 * mlciDeploy and mlciRollback use it; use it directly around your own steps on an environment.
 *
 * Parameters (defaults in brackets):
 *   env       environment name, e.g. 'production' (required)
 *   project   project part of the lock name [env.MLCI_PROJECT, else the multibranch project's name]
 *   enabled   take the lock [true]; false when the caller already holds it (a stage-level lock)
 *
 * Returns what the body returns.
 *
 * Example:
 *   mlciLock(env: 'production') {
 *       mlciRollback(env: 'production', lock: false)
 *   }
 */
def call(Map config = [:], Closure body) {
    Map c = [project: env.MLCI_PROJECT ?: '', enabled: true] + config
    if (!c.env) {
        error("mlciLock: missing required parameter 'env' (the environment whose lock to take)")
    }
    if (!c.enabled) {
        return body()
    }
    return lock(resource: "mlci-${c.project ?: projectName()}-${c.env}") {
        body()
    }
}

/** The job's project name: the multibranch project, not the branch. */
String projectName() {
    List parts = (env.JOB_NAME ?: 'mlci').tokenize('/')
    if (env.BRANCH_NAME && parts.size() > 1) {
        parts = parts.subList(0, parts.size() - 1)
    }
    return parts.join('-')
}
