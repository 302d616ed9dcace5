/**
 * mlciTrain: trains the model with the committed parameters (`mlci train`), tracked in MLflow,
 * and returns reports/train.json.
 *
 * Parameters (defaults in brackets):
 *   report     report to read [reports/train.json]
 *   plus the common keys of mlciCommand (mlci, config, mlflowTrackingUri, mlflowCredentialsId,
 *   trustForkPullRequests)
 *
 * Returns the parsed report: model_name, version, run_id, metrics, primary_metric, commit, data.
 *
 * Example:
 *   def run = mlciTrain()
 *   echo "trained ${run.model_name} v${run.version}"
 */
def call(Map config = [:]) {
    Map c = [report: 'reports/train.json'] + config
    int status = mlciCommand(c + [command: 'train', script: '"$MLCI_BIN" train', mlflow: true])
    if (status == 1) {
        error('mlci train: training did not produce an acceptable model (exit 1): the data check or ' +
            'the training run said no. See the log above and reports/.')
    }
    // returnPojo: plain Map/List with Java null. Without it json-lib turns JSON null into JSONNull,
    // which Groovy treats as true and which has no properties (e.g. "production": null).
    Map report = readJSON(file: c.report, returnPojo: true)
    echo("mlci train: ${report.model_name} version ${report.version} (run ${report.run_id}, " +
        "${report.primary_metric} = ${report.metrics?.get(report.primary_metric)})")
    return report
}
