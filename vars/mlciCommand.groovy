/**
 * mlciCommand: runs one `mlci` command the way every mlci step does, and maps its exit code.
 *
 * The other steps call it; use it directly only for commands that have no step of their own
 * (for example `mlci status`).
 *
 * Parameters (defaults in brackets):
 *   command                 name used in messages, e.g. 'deploy' (required)
 *   script                  the single-quoted shell text to run; it reads values only from the
 *                           environment, e.g. '"$MLCI_BIN" status --json' (required)
 *   vars                    extra environment entries 'NAME=value' given through withEnv [[]]
 *   mlflow                  the command talks to MLflow: bind the MLflow credentials [false].
 *                           The steps set it for train, gate, build, deploy and rollback, not for
 *                           test (pull-request test code never sees the MLflow password).
 *   trustForkPullRequests   bind the MLflow credentials for pull requests from forks too
 *                           (env.CHANGE_FORK set) [env.MLCI_TRUST_FORK_PULL_REQUESTS == 'true']
 *   mlci                    path of the mlci executable [.venv/bin/mlci]
 *   config                  mlci config file [env.MLCI_CONFIG or mlci.yaml]
 *   mlflowTrackingUri       MLflow tracking URI [env.MLCI_MLFLOW_TRACKING_URI; unset = mlci.yaml]
 *   mlflowCredentialsId     username/password credential for MLflow [env.MLCI_MLFLOW_CREDENTIALS_ID]
 *   hint3                   extra advice when a dependency is unreachable (exit 3) ['']
 *
 * Returns the exit status when it is 0 or 1 (1: a check said no; the caller explains it).
 * Exit 2 (bad input: config, data or parameters), 3 (unreachable dependency) and any other status fail the build
 * with a message that says what to fix.
 *
 * Example:
 *   int status = mlciCommand(command: 'status', script: '"$MLCI_BIN" status --json')
 */
def call(Map config = [:]) {
    Map c = [
        vars: [],
        mlflow: false,
        trustForkPullRequests: env.MLCI_TRUST_FORK_PULL_REQUESTS == 'true',
        mlci: '.venv/bin/mlci',
        config: env.MLCI_CONFIG ?: 'mlci.yaml',
        mlflowTrackingUri: env.MLCI_MLFLOW_TRACKING_URI,
        mlflowCredentialsId: env.MLCI_MLFLOW_CREDENTIALS_ID,
        hint3: '',
    ] + config
    for (String key in ['command', 'script']) {
        if (!c[key]) {
            error("mlciCommand: missing required parameter '${key}'")
        }
    }

    List envVars = ["MLCI_BIN=${c.mlci}", "MLCI_CONFIG=${c.config}"]
    if (c.mlflowTrackingUri) {
        envVars << "MLFLOW_TRACKING_URI=${c.mlflowTrackingUri}"
    }
    envVars.addAll(c.vars)

    // MLflow credentials only for commands that talk to MLflow, and never to code from a fork's pull
    // request (it could print or send them) unless the job says forks are trusted.
    List credentials = []
    if (c.mlflow && c.mlflowCredentialsId) {
        if (env.CHANGE_FORK && !c.trustForkPullRequests) {
            echo("mlci ${c.command}: MLflow credentials withheld: this pull request comes from the fork " +
                "'${env.CHANGE_FORK}' (set trustForkPullRequests: true to bind them).")
        } else {
            credentials << usernamePassword(credentialsId: c.mlflowCredentialsId,
                usernameVariable: 'MLFLOW_TRACKING_USERNAME', passwordVariable: 'MLFLOW_TRACKING_PASSWORD')
        }
    }

    int status = 0
    withEnv(envVars) {
        if (credentials) {
            withCredentials(credentials) {
                status = sh(script: c.script, returnStatus: true, label: "mlci ${c.command}")
            }
        } else {
            status = sh(script: c.script, returnStatus: true, label: "mlci ${c.command}")
        }
    }

    if (status == 0 || status == 1) {
        return status
    }
    if (status == 2) {
        error("mlci ${c.command} rejected its input (exit 2): fix ${c.config}, the data it names (a missing or " +
            'invalid file, column or value) or the step parameters. The log above names the key, file or value ' +
            'at fault.')
    }
    if (status == 3) {
        // mlci's own message, just above, names what it could not reach (the tracking server, this agent's
        // engine, or an environment's ssh:// host): this one must not point at the wrong machine.
        error("mlci ${c.command} could not reach a dependency (exit 3); its message above names which: the " +
            'MLflow tracking server (MLFLOW_TRACKING_URI and its credentials), the Docker engine of this agent ' +
            "(docker info), or an environment's docker_host (an ssh:// host: its SSH server, the deploy key, " +
            "its engine). ${c.hint3}".trim())
    }
    if (status == 127) {
        error("mlci ${c.command}: '${c.mlci}' was not found (exit 127). Run mlciSetup first in this workspace.")
    }
    error("mlci ${c.command} stopped with unexpected exit status ${status}; see the log above.")
    return status
}
