/**
 * mlciApprove: the manual gate before production. Call it OUTSIDE any node: it needs no
 * workspace and holds no executor while it waits (it runs no sh and reads no file; what it shows
 * comes in as parameters, e.g. the map mlciGate returned).
 *
 * The approver sees one line (model, version, primary metric candidate vs production, gate
 * verdict) and a link to the archived gate table. Only the configured group may proceed; the
 * step returns who did. Milestones before and after: a newer build that passes the gate
 * supersedes an older build still waiting here.
 * Abort, timeout or superseded: the step says so (log and build description: nothing was
 * deployed) and lets the interruption PROPAGATE, so the build ends ABORTED (or NOT_BUILT when
 * superseded) and no later stage deploys.
 *
 * Parameters (defaults in brackets):
 *   gate           the map mlciGate returned (model, version, passed, metric, candidate,
 *                  production, productionVersion, tableUrl) [[:], shown as unknown]
 *   env            environment being approved [production]
 *   submitter      Jenkins user(s) or group(s) allowed to approve, comma-separated
 *                  [env.MLCI_APPROVERS or mlci-approvers]
 *   timeoutHours   how long to wait [24]
 *   stagingUrl     where the candidate runs in staging, shown when given [none]
 *   ok             label of the approve button [Deploy to <env>]
 *
 * Returns the approver's user id.
 *
 * Example:
 *   def gate = mlciGate()                    // inside a node
 *   String approver = mlciApprove(gate: gate, submitter: 'ml-leads', timeoutHours: 8)   // no node
 */
import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException
import org.jenkinsci.plugins.workflow.steps.TimeoutStepExecution

def call(Map config = [:]) {
    Map c = [
        gate: [:],
        env: 'production',
        submitter: env.MLCI_APPROVERS ?: 'mlci-approvers',
        timeoutHours: 24,
        stagingUrl: '',
        ok: '',
    ] + config
    if (!c.submitter) {
        error("mlciApprove: missing required parameter 'submitter' (who may approve ${c.env})")
    }
    Map gate = c.gate ?: [:]
    String what = "${gate.model ?: 'unknown model'} v${gate.version ?: '?'}"
    String message = approvalMessage(gate, c.env, c.stagingUrl)

    milestone(label: "mlci: waiting for ${c.env} approval")
    String approver = null
    try {
        timeout(time: c.timeoutHours as int, unit: 'HOURS') {
            // With submitterParameter and no parameters, input returns the approver's user id.
            approver = input(id: 'mlciApprove', message: message, ok: c.ok ?: "Deploy to ${c.env}",
                submitter: c.submitter, submitterParameter: 'APPROVER')
        }
    } catch (InterruptedException interrupted) {
        // FlowInterruptedException: a user pressed Abort, the timeout fired, or a newer build passed
        // the milestone. Say which, then let it propagate: the build must end ABORTED/NOT_BUILT and
        // no later stage may deploy.
        String why = "NOT deployed to ${c.env}: ${what} was not approved: " +
            "${interruptionReason(interrupted, c.timeoutHours)}. Nothing was deployed."
        echo(why)
        currentBuild.description = ("${currentBuild.description ?: ''}\n${escape(why)}").trim()
        throw interrupted
    }
    milestone(label: "mlci: ${c.env} approved")
    echo("mlciApprove: ${what} approved for ${c.env} by ${approver}")
    return approver
}

/** One line, then the link to the gate table (the input page renders text, not HTML). */
@NonCPS
String approvalMessage(Map gate, Object envName, Object stagingUrl) {
    String against = gate.productionVersion == null ? 'nothing in production yet' :
        "production v${gate.productionVersion} ${number(gate.production)}"
    String verdict = gate.passed == null ? 'gate not run' : (gate.passed ? 'gate PASSED' : 'gate FAILED')
    String line = "Deploy ${gate.model ?: 'unknown model'} v${gate.version ?: '?'} to ${envName}? " +
        "${gate.metric ?: 'metric'} ${number(gate.candidate)} vs ${against}; ${verdict}."
    if (stagingUrl) {
        line += " Staging: ${stagingUrl}"
    }
    return "${line}\nGate table: ${gate.tableUrl ?: 'not archived (no gate summary given)'}".toString()
}

/** Why the wait ended, from the interruption's causes. */
@NonCPS
String interruptionReason(Throwable interrupted, Object timeoutHours) {
    if (!(interrupted instanceof FlowInterruptedException)) {
        return 'the build was interrupted'
    }
    List causes
    try {
        causes = interrupted.causes
    } catch (SecurityException notWhitelisted) {
        // A sandboxed (untrusted) library may not read the causes; load mlci as a trusted library.
        return "aborted by a user, superseded by a newer build, or no answer within ${timeoutHours} h"
    }
    for (Object cause : causes) {
        if (cause instanceof TimeoutStepExecution.ExceededTimeout) {
            return "approval timed out (no answer within ${timeoutHours} h)"
        }
    }
    String described = causes*.shortDescription.findAll { String text -> text }.join('; ')
    return described ?: "interrupted (${interrupted.result})"
}

@NonCPS
String number(Object value) {
    return value instanceof Number ? String.format('%.4f', value as double) : String.valueOf(value)
}

@NonCPS
String escape(Object value) {
    return String.valueOf(value).replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
        .replace('"', '&quot;').replace("'", '&#39;')
}
