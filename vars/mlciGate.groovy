/**
 * mlciGate: runs the quality gate (`mlci gate`): the candidate model against the model in
 * production. The comparison table is printed and archived (reports/gate-table.txt), and the
 * build description gets ONE line of plain text (Jenkins' default markup formatter shows HTML as
 * text) with the verdict and the URLs written out (MLflow run, gate table).
 *
 * Parameters (defaults in brackets):
 *   failOnGateFailure   a failed gate fails the build [true]; false marks it UNSTABLE with
 *                       unstable(...) and returns (e.g. to only report on pull requests)
 *   report              report to read [reports/gate.json]
 *   run                 the map mlciTrain returned, for the MLflow run link [none]
 *   plus the common keys of mlciCommand (mlci, config, mlflowTrackingUri, mlflowCredentialsId,
 *   trustForkPullRequests)
 *
 * Returns a small summary map (what mlciApprove shows; it needs no workspace):
 *   model, version, passed, blocking, metric, candidate, production (value or null),
 *   productionVersion (or null), runId, runUrl (or null), tableUrl, summary (one line of text).
 *
 * Example:
 *   def gate = mlciGate(failOnGateFailure: env.CHANGE_ID == null, run: trained)
 *   mlciApprove(gate: gate)
 */
def call(Map config = [:]) {
    Map c = [failOnGateFailure: true, report: 'reports/gate.json', run: [:], table: 'reports/gate-table.txt'] + config
    int status = mlciCommand(c + [command: 'gate', script: '"$MLCI_BIN" gate', mlflow: true])
    if (status == 1 && !fileExists(c.report)) {
        error("mlci gate failed (exit 1) without writing ${c.report}; see the log above.")
    }
    // returnPojo: plain Map/List with Java null. Without it json-lib turns JSON null into JSONNull,
    // which Groovy treats as true and which has no properties ("production": null on a first build).
    Map report = readJSON(file: c.report, returnPojo: true)
    Map gate = summarize(report, c.run ?: [:], env.BUILD_URL ?: '', c.table)
    gate.passed = status == 0 && report.passed == true
    gate.blocking = c.failOnGateFailure as boolean
    gate.summary = summaryLine(gate)

    writeFile(file: c.table, text: "${gate.summary}\n\n${report.table ?: ''}\n")
    archiveArtifacts(artifacts: "${c.report}, ${c.table}", allowEmptyArchive: true)
    echo("${gate.summary}\n${report.table ?: ''}")
    currentBuild.description = description(gate)

    if (!gate.passed) {
        List reasons = report.reasons ?: []
        String message = "Quality gate failed for ${gate.model} v${gate.version}: " +
            "${reasons ? reasons.join('; ') : 'see ' + c.report}. The comparison is in ${c.table}."
        if (gate.blocking) {
            error(message)
        }
        unstable("${message} Not failing the build: this gate is not blocking (failOnGateFailure: false).")
    }
    return gate
}

/** The fields of the gate report an approver and the build page need, with Java nulls. */
@NonCPS
Map summarize(Map report, Map run, String buildUrl, String table) {
    Map candidate = report.candidate ?: [:]
    Map production = report.production ?: [:]
    String metric = report.primary_metric
    String trackingUri = report.tracking_uri ?: run.tracking_uri
    String experiment = report.experiment_id ?: run.experiment_id
    String runId = candidate.run_id ?: run.run_id
    String runUrl = null
    if (trackingUri && experiment && runId && (trackingUri.startsWith('http://') || trackingUri.startsWith('https://'))) {
        // Credentials in the tracking URI (https://user:token@host) never reach the build page.
        String base = trackingUri.replaceAll('/+$', '').replaceAll('://[^/@]+@', '://')
        runUrl = "${base}/#/experiments/${experiment}/runs/${runId}".toString()
    }
    return [
        model: report.model_name,
        version: candidate.version == null ? null : candidate.version.toString(),
        metric: metric,
        candidate: (candidate.metrics ?: [:])[metric],
        production: production ? (production.metrics ?: [:])[metric] : null,
        productionVersion: production.version == null ? null : production.version.toString(),
        runId: runId,
        runUrl: runUrl,
        tableUrl: buildUrl ? "${buildUrl}artifact/${table}".toString() : null,
    ]
}

/** e.g. "Gate PASSED: iris v3, accuracy 0.9700 vs production v2 0.9500". */
@NonCPS
String summaryLine(Map gate) {
    String against = gate.productionVersion == null ? 'nothing in production yet' :
        "production v${gate.productionVersion} ${number(gate.production)}"
    return "Gate ${gate.passed ? 'PASSED' : 'FAILED'}: ${gate.model} v${gate.version}, " +
        "${gate.metric} ${number(gate.candidate)} vs ${against}"
}

@NonCPS
String number(Object value) {
    return value instanceof Number ? String.format('%.4f', value as double) : String.valueOf(value)
}

/**
 * One line of plain text for the build page (the default markup formatter is plain text, so no
 * HTML): the verdict, then the URLs written out. Values are untrusted (model names come from the
 * branch): control characters and line breaks become spaces.
 */
@NonCPS
String description(Map gate) {
    List parts = [summaryLine(gate)]
    if (gate.runUrl) {
        parts << "MLflow run: ${gate.runUrl}"
    }
    if (gate.tableUrl) {
        parts << "gate table: ${gate.tableUrl}"
    }
    return parts.join(' | ').replaceAll('[\\s\\p{Cntrl}\\u2028\\u2029]+', ' ').trim()
}
