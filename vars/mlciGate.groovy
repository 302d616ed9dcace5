/**
 * mlciGate: runs the quality gate (`mlci gate`): the candidate model against the model in
 * production. The comparison table is printed, archived (reports/gate-table.txt) and put in the
 * build description, whether the gate passes or not.
 *
 * Parameters (defaults in brackets):
 *   failOnGateFailure   fail the build when the gate says no [true]; false marks it UNSTABLE
 *                       and returns the report (e.g. to only report on pull requests)
 *   report              report to read [reports/gate.json]
 *   plus the common keys of mlciCommand (mlci, config, mlflowTrackingUri, mlflowCredentialsId)
 *
 * Returns the parsed report: passed, model_name, candidate, production, primary_metric,
 * reasons, table.
 *
 * Example:
 *   def gate = mlciGate(failOnGateFailure: env.CHANGE_ID == null)
 */
def call(Map config = [:]) {
    Map c = [failOnGateFailure: true, report: 'reports/gate.json'] + config
    int status = mlciCommand(c + [command: 'gate', script: '"$MLCI_BIN" gate'])
    if (status == 1 && !fileExists(c.report)) {
        error("mlci gate failed (exit 1) without writing ${c.report}; see the log above.")
    }
    // returnPojo: plain Map/List with Java null. Without it json-lib turns JSON null into JSONNull,
    // which Groovy treats as true and which has no properties (e.g. "production": null).
    Map report = readJSON(file: c.report, returnPojo: true)
    String production = report.production ? "production v${report.production.version}" : 'no model in production'
    String verdict = report.passed ? 'PASSED' : 'FAILED'
    String summary = "Gate ${verdict}: ${report.model_name} v${report.candidate?.version} vs ${production} " +
        "(${report.primary_metric})"
    writeFile(file: 'reports/gate-table.txt', text: "${summary}\n\n${report.table ?: ''}\n")
    archiveArtifacts(artifacts: 'reports/gate.json, reports/gate-table.txt', allowEmptyArchive: true)
    echo("${summary}\n${report.table ?: ''}")
    currentBuild.description = "${summary}\n${report.table ?: ''}".toString()

    if (status == 1 || !report.passed) {
        String reasons = (report.reasons ?: []).join('; ')
        String message = "Quality gate failed for ${report.model_name} v${report.candidate?.version}: " +
            "${reasons ?: 'see reports/gate.json'}. The comparison is in the build description and " +
            'reports/gate-table.txt.'
        if (c.failOnGateFailure) {
            error(message)
        }
        echo("${message} (not failing the build: failOnGateFailure is false)")
        currentBuild.result = 'UNSTABLE'
    }
    return report
}
