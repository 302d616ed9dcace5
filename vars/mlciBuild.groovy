/**
 * mlciBuild: builds the images (API with the model baked in, dashboard, router) with
 * `mlci build`, pushing them when a registry is configured in mlci.yaml.
 *
 * Parameters (defaults in brackets):
 *   version                 model version to package [the version trained in this build]
 *   alias                   or a registry alias instead, e.g. 'candidate' [none]
 *   registryCredentialsId   username/password credential for the registry
 *                           [env.MLCI_REGISTRY_CREDENTIALS_ID]
 *   report                  report to read [reports/build.json]
 *   plus the common keys of mlciCommand (mlci, config, mlflowTrackingUri, mlflowCredentialsId)
 *
 * Returns the parsed report: model_name, version, images (api, dashboard, router: tag, id, size,
 * digest), pushed.
 *
 * Example:
 *   def images = mlciBuild(version: run.version)
 *   echo images.images.api.tag
 */
def call(Map config = [:]) {
    Map c = [version: '', alias: '', report: 'reports/build.json'] + config
    if (c.version && c.alias) {
        error('mlciBuild: give either version or alias, not both')
    }
    String script = '''\
set --
if [ -n "$MLCI_VERSION" ]; then set -- --version "$MLCI_VERSION"; fi
if [ -n "$MLCI_ALIAS" ]; then set -- --alias "$MLCI_ALIAS"; fi
"$MLCI_BIN" build "$@"
'''
    int status = mlciCommand(c + [
        command: 'build',
        script: script,
        registry: true,
        vars: ["MLCI_VERSION=${c.version}", "MLCI_ALIAS=${c.alias}"],
    ])
    if (status == 1) {
        error('mlci build: an image failed its check (exit 1); see the log above and reports/build.json.')
    }
    // returnPojo: plain Map/List with Java null. Without it json-lib turns JSON null into JSONNull,
    // which Groovy treats as true and which has no properties (e.g. "production": null).
    Map report = readJSON(file: c.report, returnPojo: true)
    echo("mlci build: ${report.model_name} v${report.version}: api ${report.images?.api?.tag}" +
        (report.pushed ? ' (pushed)' : ' (not pushed)'))
    return report
}
