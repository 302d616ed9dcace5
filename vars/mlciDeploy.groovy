/**
 * mlciDeploy: deploys a model to one environment, blue/green (`mlci deploy --env ENV`): the idle
 * slot is filled, smoke-tested, then the router switches to it. If verification fails, mlci has
 * already switched back (rolled back) before this step fails. Holds a lock per environment so
 * two builds never deploy to the same environment at once.
 *
 * Parameters (defaults in brackets):
 *   env                     environment name from mlci.yaml, e.g. 'staging' (required)
 *   version                 model version to deploy [the one built in this build]
 *   image                   or an image reference instead [none]
 *   approver                who approved (recorded on the deploy) [env.MLCI_APPROVER or none]
 *   project                 project part of the lock name [env.MLCI_PROJECT or the job name]
 *   lock                    take the lock 'mlci-<project>-<env>' [true]; false when the
 *                           caller already holds it (e.g. a stage-level lock)
 *   registryCredentialsId   credential to pull images [env.MLCI_REGISTRY_CREDENTIALS_ID]
 *   plus the common keys of mlciCommand (mlci, config, mlflowTrackingUri, mlflowCredentialsId)
 *
 * Returns the parsed reports/deploy-ENV.json: env, current (colour, model_version, image, url,
 * deployed_at, deployed_by, approver, build_url, result), records.
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
        project: env.MLCI_PROJECT ?: '',
        lock: true,
    ] + config
    if (!c.env) {
        error("mlciDeploy: missing required parameter 'env' (the environment to deploy to, e.g. 'staging')")
    }
    if (c.version && c.image) {
        error('mlciDeploy: give either version or image, not both')
    }
    String report = "reports/deploy-${c.env}.json"
    String script = '''\
set -- --env "$MLCI_ENV"
if [ -n "$MLCI_VERSION" ]; then set -- "$@" --version "$MLCI_VERSION"; fi
if [ -n "$MLCI_IMAGE" ]; then set -- "$@" --image "$MLCI_IMAGE"; fi
"$MLCI_BIN" deploy "$@"
'''
    Map run = c + [
        command: "deploy --env ${c.env}",
        script: script,
        registry: true,
        vars: ["MLCI_ENV=${c.env}", "MLCI_VERSION=${c.version}", "MLCI_IMAGE=${c.image}",
               "MLCI_APPROVER=${c.approver}"],
    ]
    int status = mlciLock(env: c.env, project: c.project, enabled: c.lock) {
        mlciCommand(run)
    } as int

    // returnPojo: plain Map/List with Java null. Without it json-lib turns JSON null into JSONNull,
    // which Groovy treats as true and which has no properties (e.g. "production": null).
    Map result = fileExists(report) ? readJSON(file: report, returnPojo: true) : [:]
    Map current = result.current ?: [:]
    if (status == 1) {
        String message = "Deploy to ${c.env} failed verification (exit 1). mlci deploy has ALREADY ROLLED " +
            "BACK: the router points to the previous slot again" +
            (current.colour ? " (${current.colour}, model v${current.model_version})" : '') +
            ". Nothing is left to undo; see the log above and ${report}."
        currentBuild.description = ("${currentBuild.description ?: ''}\n${c.env}: deploy failed " +
            'verification, rolled back').trim()
        error(message)
    }
    echo("mlci deploy: ${c.env} now serves model v${current.model_version} from the ${current.colour} slot " +
        "at ${current.url}")
    return result
}
