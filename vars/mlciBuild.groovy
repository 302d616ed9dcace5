/**
 * mlciBuild: builds the images (API with the model baked in, dashboard, router) with
 * `mlci build`, pushing them when a registry is configured in mlci.yaml.
 *
 * Parameters (defaults in brackets):
 *   version                 model version to package [the version trained in this build]
 *   alias                   or a registry alias instead, e.g. 'candidate' [none]
 *   registryCredentialsId   username/password credential for the registry, bound to
 *                           MLCI_REGISTRY_USERNAME/PASSWORD for this step only, with a Docker
 *                           config of this build (DOCKER_CONFIG under pwd(tmp: true)) that is
 *                           logged out of and deleted afterwards [env.MLCI_REGISTRY_CREDENTIALS_ID]
 *   report                  report to read [reports/build.json]
 *   plus the common keys of mlciCommand (mlci, config, mlflowTrackingUri, mlflowCredentialsId,
 *   trustForkPullRequests)
 *
 * Returns the parsed report: model_name, version, images (api, dashboard, router: tag, id, size,
 * digest), pushed.
 *
 * Example:
 *   def images = mlciBuild(version: run.version)
 *   echo images.images.api.tag
 */
def call(Map config = [:]) {
    Map c = [version: '', alias: '', report: 'reports/build.json', mlci: '.venv/bin/mlci',
             registryCredentialsId: env.MLCI_REGISTRY_CREDENTIALS_ID ?: ''] + config
    if (c.version && c.alias) {
        error('mlciBuild: give either version or alias, not both')
    }
    String script = '''\
set --
if [ -n "$MLCI_VERSION" ]; then set -- --version "$MLCI_VERSION"; fi
if [ -n "$MLCI_ALIAS" ]; then set -- --alias "$MLCI_ALIAS"; fi
"$MLCI_BIN" build "$@"
'''
    Map run = c + [
        command: 'build',
        script: script,
        mlflow: true,
        vars: ["MLCI_VERSION=${c.version}", "MLCI_ALIAS=${c.alias}"],
    ]
    int status = c.registryCredentialsId ?
        mlciRegistryCredentials(credentialsId: c.registryCredentialsId, mlci: c.mlci, label: 'mlci build') {
            mlciCommand(run)
        } as int : mlciCommand(run)
    if (status == 1) {
        error('mlci build: an image failed its check (exit 1); see the log above and reports/build.json.')
    }
    // returnPojo: plain Map/List with Java null (json-lib's JSONNull is truthy; "digest": null is common).
    Map report = readJSON(file: c.report, returnPojo: true)
    echo("mlci build: ${report.model_name} v${report.version}: api ${report.images?.api?.tag}" +
        (report.pushed ? ' (pushed)' : ' (not pushed)'))
    // Images are identified by digest (fingerprinting them is not possible): one line each in the log.
    echo(imageLines(report.images ?: [:]))
    return report
}

/** "image api: registry/x-api:3-abc1234 sha256:...", one line per image. */
@NonCPS
String imageLines(Map images) {
    return images.collect { String role, Map image ->
        "image ${role}: ${image?.tag} ${image?.digest ?: '(no registry digest: not pushed)'}"
    }.join('\n')
}
