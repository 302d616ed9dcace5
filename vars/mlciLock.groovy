/**
 * mlciLock: runs a body while holding the lock of one mlci environment, mlciLockName's
 * 'mlci/<folder>/<project>/<env>' (Lockable Resources), so two builds never deploy to or roll back
 * the same environment at once. The project is the `project` of mlci.yaml, so every job of the
 * team's folder building the same project (branches, pull requests, a rollback job) shares one
 * lock per environment; another folder's jobs never take it.
 * mlciDeploy and mlciRollback use it; use it directly around your own steps on an environment.
 *
 * Parameters (defaults in brackets):
 *   env       environment name, e.g. 'production' (required)
 *   project   project part of the lock name [`project` of the config file]; give it to take the
 *             lock outside a node (reading mlci.yaml needs a workspace)
 *   config    mlci config file to read the project from [env.MLCI_CONFIG or mlci.yaml]
 *   enabled   take the lock [true]; false when the caller already holds it (a stage-level lock)
 *   inversePrecedence   the newest waiting build gets the lock first [false]
 *
 * Returns what the body returns.
 *
 * Example:
 *   mlciLock(env: 'production') {
 *       mlciRollback(env: 'production', lock: false)
 *   }
 */
def call(Map config = [:], Closure body) {
    Map c = [project: '', config: env.MLCI_CONFIG ?: 'mlci.yaml', enabled: true, inversePrecedence: false] + config
    if (!c.env) {
        error("mlciLock: missing required parameter 'env' (the environment whose lock to take)")
    }
    if (!c.enabled) {
        return body()
    }
    String project = c.project ?: projectOf(c.config)
    return lock(resource: mlciLockName(project: project, env: c.env), inversePrecedence: c.inversePrecedence as boolean) {
        body()
    }
}

/** The `project` key of the mlci config file in the workspace. */
String projectOf(String config) {
    if (!fileExists(config)) {
        error("mlciLock: ${config} not found in the workspace, so the lock name (mlci/<folder>/<project>/<env>) is " +
            'unknown: run this step inside a node with the checkout, or pass project.')
    }
    Object parsed = readYaml(file: config)
    String project = parsed instanceof Map ? parsed.project : null
    if (!project) {
        error("mlciLock: ${config} has no 'project' key, which names the lock mlci/<folder>/<project>/<env>; add it " +
            '(mlci validates it) or pass project.')
    }
    return project
}
