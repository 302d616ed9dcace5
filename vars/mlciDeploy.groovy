/**
 * mlciDeploy: deploys a model to one environment, blue/green (`mlci deploy --env ENV`): the idle
 * slot is filled, smoke-tested, then the router switches to it. If the policy refuses the version
 * or verification fails, live traffic is unchanged (mlci has already switched back) when this step
 * fails. Holds a lock per environment so
 * two builds never deploy to the same environment at once.
 *
 * Parameters (defaults in brackets):
 *   env                     environment name from mlci.yaml, e.g. 'staging' (required)
 *   version                 model version to deploy [the one built in this build]
 *   image                   or an image reference instead [none]
 *   approver                who approved (recorded on the deploy) [env.MLCI_APPROVER or none]
 *   force                   deploy although the environment's policy (requires in mlci.yaml)
 *                           is not met: `mlci deploy --force --reason` [false]; needs reason
 *   reason                  why the policy is overridden, recorded on the version and the
 *                           environment's history ['']
 *   project                 project part of the lock name [`project` of the config file]
 *   lock                    take the lock mlci/<folder>/<project>/<env> [true]; false when the
 *                           caller already holds it (e.g. a stage-level lock)
 *   registryPullCredentialsId  a PULL credential of the image registry, for environments on other
 *                           hosts (docker_host) that pull the build's images by digest; bound to
 *                           MLCI_REGISTRY_USERNAME/PASSWORD for this step only, with a Docker config
 *                           of this build logged out of and deleted afterwards (mlciRegistryCredentials).
 *                           Not the push credential of mlciBuild [env.MLCI_REGISTRY_PULL_CREDENTIALS_ID]
 *   sshCredentialsId        the SSH credential of environments on remote Docker hosts (ssh://), in an
 *                           ssh-agent for this command only (mlciSshCredentials); never a key file on
 *                           the agents [env.MLCI_SSH_CREDENTIALS_ID or none]
 *   plus the common keys of mlciCommand (mlci, config, mlflowTrackingUri, mlflowCredentialsId,
 *   trustForkPullRequests)
 *
 * Returns the parsed reports/deploy-ENV.json: env, current (colour, model_version, image, url,
 * deployed_at, deployed_by, approver, build_url, result), last (this deploy's record: result,
 * reason, ...), records.
 * Exit 1 (mlci said no) fails the build with the report's last.result and last.reason when it
 * has them, and what live traffic is; the build description gets "<env>: deploy refused or rolled back".
 *
 * Example:
 *   def staging = mlciDeploy(env: 'staging')
 *   echo "staging serves v${staging.current.model_version} at ${staging.current.url}"
 */
def call(Map config = [:]) {
    Map c = [
        env: '',
        version: '',
        image: '',
        approver: env.MLCI_APPROVER ?: '',
        force: false,
        reason: '',
        project: '',
        config: env.MLCI_CONFIG ?: 'mlci.yaml',
        lock: true,
        mlci: '.venv/bin/mlci',
        registryPullCredentialsId: env.MLCI_REGISTRY_PULL_CREDENTIALS_ID ?: '',
        sshCredentialsId: env.MLCI_SSH_CREDENTIALS_ID ?: '',
    ] + config
    if (!c.env) {
        error("mlciDeploy: missing required parameter 'env' (the environment to deploy to, e.g. 'staging')")
    }
    if (c.version && c.image) {
        error('mlciDeploy: give either version or image, not both')
    }
    if (c.force && !c.reason) {
        error("mlciDeploy: force needs a reason (recorded on the model version and the ${c.env} history)")
    }
    String report = "reports/deploy-${c.env}.json"
    String script = '''\
set -- --env "$MLCI_ENV"
if [ -n "$MLCI_VERSION" ]; then set -- "$@" --version "$MLCI_VERSION"; fi
if [ -n "$MLCI_IMAGE" ]; then set -- "$@" --image "$MLCI_IMAGE"; fi
if [ "$MLCI_FORCE" = true ]; then set -- "$@" --force --reason "$MLCI_REASON"; fi
"$MLCI_BIN" deploy "$@"
'''
    Map run = c + [
        command: "deploy --env ${c.env}",
        script: script,
        mlflow: true,
        vars: ["MLCI_ENV=${c.env}", "MLCI_VERSION=${c.version}", "MLCI_IMAGE=${c.image}",
               "MLCI_APPROVER=${c.approver}", "MLCI_FORCE=${c.force ? 'true' : 'false'}", "MLCI_REASON=${c.reason}"],
    ]
    int status = mlciLock(env: c.env, project: c.project, config: c.config, enabled: c.lock) {
        // The deploy credentials exist for this command only: the hosts' SSH key, the registry's pull credential.
        mlciSshCredentials(credentialsId: c.sshCredentialsId) {
            c.registryPullCredentialsId ?
                mlciRegistryCredentials(credentialsId: c.registryPullCredentialsId, mlci: c.mlci, label: 'mlci deploy') {
                    mlciCommand(run)
                } : mlciCommand(run)
        }
    } as int

    // returnPojo: plain Map/List with Java null. Without it json-lib turns JSON null into JSONNull,
    // which Groovy treats as true and which has no properties (e.g. "production": null).
    Map result = fileExists(report) ? readJSON(file: report, returnPojo: true) : [:]
    Map current = result.current ?: [:]
    if (status == 1) {
        error(refusal(c.env, report, result))
    }
    echo("mlci deploy: ${c.env} now serves model v${current.model_version} from the ${current.colour} slot " +
        "at ${current.url}")
    return result
}

/**
 * The error of an exit 1: what mlci recorded for this deploy (last.result, last.reason) when the
 * report has it, else the three possible causes; and that live traffic is as before.
 */
String refusal(String envName, String report, Map result) {
    Map current = result.current ?: [:]
    Map last = result.last ?: [:]
    String why = last.result ? "${last.result}${last.reason ? ': ' + last.reason : ''}" :
        "the environment's policy refused the version (use force with a reason to override), another " +
        'deploy held it, or verification failed and mlci already switched back'
    currentBuild.description = oneLine("${currentBuild.description ?: ''} | ${envName}: deploy refused or rolled back")
    return "mlci deploy --env ${envName} said no (exit 1): ${why}. Live traffic is as before" +
        (current.colour ? " (live: ${current.colour}, model v${current.model_version})" : '') +
        ". Nothing is left to undo; the log above and ${report} say more."
}

/** Build descriptions are plain text on one line; values from reports are untrusted. */
@NonCPS
String oneLine(String text) {
    return text.replaceAll('[\\s\\p{Cntrl}\\u2028\\u2029]+', ' ').replaceAll('^[ |]+', '').trim()
}
