/**
 * mlciRollback: switches an environment back to the colour still running the previous model
 * (`mlci rollback --env ENV`), under the same per-environment lock as mlciDeploy.
 *
 * Parameters (defaults in brackets):
 *   env       environment name from mlci.yaml, e.g. 'production' (required)
 *   project   project part of the lock name [`project` of the config file]
 *   lock      take the lock mlci/<folder>/<project>/<env> [true]
 *   sshCredentialsId  the SSH credential of remote Docker hosts, for this command only
 *             (mlciSshCredentials) [env.MLCI_SSH_CREDENTIALS_ID or none]
 *   plus the common keys of mlciCommand (mlci, config, mlflowTrackingUri, mlflowCredentialsId,
 *   trustForkPullRequests)
 *
 * Returns the parsed reports/deploy-ENV.json.
 *
 * Example (a parameterised "rollback" job):
 *   mlciRollback(env: 'production')
 */
def call(Map config = [:]) {
    Map c = [env: '', project: '', config: env.MLCI_CONFIG ?: 'mlci.yaml', lock: true,
             sshCredentialsId: env.MLCI_SSH_CREDENTIALS_ID ?: ''] + config
    if (!c.env) {
        error("mlciRollback: missing required parameter 'env' (the environment to roll back, e.g. 'production')")
    }
    Map run = c + [
        command: "rollback --env ${c.env}",
        script: '"$MLCI_BIN" rollback --env "$MLCI_ENV"',
        vars: ["MLCI_ENV=${c.env}"],
        mlflow: true,
    ]
    int status = mlciLock(env: c.env, project: c.project, config: c.config, enabled: c.lock) {
        mlciSshCredentials(credentialsId: c.sshCredentialsId) {
            mlciCommand(run)
        }
    } as int
    if (status == 1) {
        error("mlci rollback --env ${c.env} was refused (exit 1): the previous colour failed its check after " +
            "the switch and live traffic was switched back, or another deploy holds the environment; the " +
            "environment is unchanged. See the log above and reports/deploy-${c.env}.json.")
    }
    // returnPojo: plain Map/List with Java null. Without it json-lib turns JSON null into JSONNull,
    // which Groovy treats as true and which has no properties (e.g. "production": null).
    String report = "reports/deploy-${c.env}.json"
    Map result = fileExists(report) ? readJSON(file: report, returnPojo: true) : [:]
    Map current = result.current ?: [:]
    String now = current ? "model v${current.model_version} from the ${current.colour} slot" :
        "nothing recorded (${report} ${result ? 'has no current deploy' : 'was not written'})"
    echo("mlci rollback: ${c.env} serves ${now} again")
    // Plain text on one line (Jenkins' default markup formatter); report values are untrusted.
    currentBuild.description = ("${currentBuild.description ?: ''} | ${c.env}: rolled back to " +
        (current ? "model v${current.model_version} (${current.colour})" : 'the previous colour'))
        .replaceAll('[\\s\\p{Cntrl}]+', ' ').replaceAll('^[ |]+', '').trim()
    return result
}
