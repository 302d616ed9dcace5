/**
 * mlciApprove: the manual gate before production. Shows the approver what they approve (model,
 * version, the gate table candidate vs production, the staging URL), lets only the configured
 * group proceed, records who did, and returns that name for the production deploy.
 * Milestones before and after: a newer build that passes the gate supersedes an older build
 * still waiting here. Timeout or abort: the build is marked ABORTED with a clear description,
 * nothing is deployed, and the step returns null (no stack trace).
 *
 * Parameters (defaults in brackets):
 *   submitter      Jenkins user(s) or group(s) allowed to approve, comma-separated
 *                  [env.MLCI_APPROVERS or mlci-approvers]
 *   timeoutHours   how long to wait [24]
 *   gateReport     [reports/gate.json]
 *   stagingReport  [reports/deploy-staging.json]
 *   ok             label of the approve button [Deploy to production]
 *
 * Returns the approver's user id, or null when not approved.
 *
 * Example:
 *   String approver = mlciApprove(submitter: 'ml-leads')
 *   if (approver) { mlciDeploy(env: 'production', approver: approver) }
 */
def call(Map config = [:]) {
    Map c = [
        submitter: env.MLCI_APPROVERS ?: 'mlci-approvers',
        timeoutHours: 24,
        gateReport: 'reports/gate.json',
        stagingReport: 'reports/deploy-staging.json',
        ok: 'Deploy to production',
    ] + config
    if (!c.submitter) {
        error("mlciApprove: missing required parameter 'submitter' (who may approve production)")
    }

    // returnPojo: plain Map/List with Java null. Without it json-lib turns JSON null into JSONNull,
    // which Groovy treats as true and which has no properties (e.g. "production": null).
    Map gate = fileExists(c.gateReport) ? readJSON(file: c.gateReport, returnPojo: true) : [:]
    // returnPojo: plain Map/List with Java null. Without it json-lib turns JSON null into JSONNull,
    // which Groovy treats as true and which has no properties (e.g. "production": null).
    Map staging = fileExists(c.stagingReport) ? readJSON(file: c.stagingReport, returnPojo: true) : [:]
    String model = gate.model_name ?: 'unknown model'
    String version = gate.candidate?.version ?: (staging.current?.model_version ?: '?')
    String production = gate.production ? "v${gate.production.version}" : 'none'
    String url = staging.current?.url ?: 'unknown (no reports/deploy-staging.json)'
    String message = "Deploy ${model} v${version} to production? (production now runs: ${production})\n" +
        "Staging: ${url}\n\n${gate.table ?: 'No gate table (reports/gate.json missing).'}\n" +
        "Approvers: ${c.submitter}. Waiting ${c.timeoutHours} h at most."

    milestone(label: 'mlci: waiting for production approval')
    String approver = null
    try {
        timeout(time: c.timeoutHours as int, unit: 'HOURS') {
            // With submitterParameter and no parameters, input returns the approver's user id.
            approver = input(id: 'mlciApproveProduction', message: message, ok: c.ok,
                submitter: c.submitter, submitterParameter: 'APPROVER')
        }
    } catch (InterruptedException interrupted) {
        // FlowInterruptedException: timeout, a user pressed Abort, or a newer build superseded this one.
        String why = "Production NOT deployed: ${model} v${version} was not approved (aborted by a user, " +
            "superseded by a newer build, or no answer within ${c.timeoutHours} h)."
        echo(why)
        currentBuild.result = 'ABORTED'
        currentBuild.description = ("${currentBuild.description ?: ''}\n${why}").trim()
    }
    if (approver) {
        milestone(label: 'mlci: production approved')
        echo("mlciApprove: ${model} v${version} approved for production by ${approver}")
    }
    return approver
}
