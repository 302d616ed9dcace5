/**
 * mlciApprove: the manual gate before production. Call it OUTSIDE any node: it needs no
 * workspace and holds no executor while it waits (it runs no sh and reads no file; what it shows
 * comes in as parameters, e.g. the map mlciGate returned).
 *
 * The approver sees one line (model, version, primary metric candidate vs production, gate
 * verdict) and a link to the archived gate table. Only the configured group may proceed; the
 * step returns who did. A newer build does NOT replace a build waiting here: the caller holds the
 * staging lock through the approval, so newer builds of the branch queue at that lock until this
 * one is approved, rejected or times out (then the newest waiting build takes the lock and its
 * milestone stops the older waiting ones). The milestones before and after this wait keep builds
 * in order when the step is used without that lock.
 * Abort or timeout: the step says which (log and build description: nothing was deployed) and
 * lets the interruption PROPAGATE, so the build ends ABORTED and no later stage deploys. On a
 * controller the input step's timeout ends as "Rejected by SYSTEM", like a rejection; the step
 * tells them apart by the time waited, read from currentBuild.duration. The library runs sandboxed
 * and calls nothing an administrator would have to approve, so it does not read the interruption's
 * causes (FlowInterruptedException.getCauses is not whitelisted): who aborted is in the log just
 * above, where Jenkins writes "Rejected by <user>" or "Aborted by <user>".
 *
 * Parameters (defaults in brackets):
 *   gate           the map mlciGate returned (model, version, passed, metric, candidate,
 *                  production, productionVersion, tableUrl) [[:], shown as unknown]
 *   env            environment being approved [production]
 *   submitter      Jenkins user(s) or group(s) allowed to approve, comma-separated
 *                  [env.MLCI_APPROVERS or mlci-approvers]
 *   timeoutHours   how long to wait [24]
 *   stagingUrl     where the candidate runs in staging, shown when given [none]
 *   ok             label of the approve choice/button [Deploy to <env>]
 *   shadow         closure returning the parsed shadow report (a Map, e.g. mlciShadowReport) or
 *                  null (no shadow configured) [none]. Its summary line is shown; the input then
 *                  has a choice "Deploy to <env>" / "Refresh the shadow report": refresh calls the
 *                  closure again (it may take an agent briefly) and asks again, within timeoutHours.
 *
 * Returns the approver's user id.
 *
 * Example:
 *   def gate = mlciGate()                    // inside a node
 *   String approver = mlciApprove(gate: gate, submitter: 'ml-leads', timeoutHours: 8)   // no node
 */
import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException

def call(Map config = [:]) {
    Map c = [
        gate: [:],
        env: 'production',
        submitter: env.MLCI_APPROVERS ?: 'mlci-approvers',
        timeoutHours: 24,
        stagingUrl: '',
        ok: '',
        shadow: null,
    ] + config
    if (!c.submitter) {
        error("mlciApprove: missing required parameter 'submitter' (who may approve ${c.env})")
    }
    if (c.shadow != null && !(c.shadow instanceof Closure)) {
        error('mlciApprove: shadow must be a closure returning the shadow report (a Map) or null')
    }
    Map gate = c.gate ?: [:]
    String what = "${gate.model ?: 'unknown model'} v${gate.version ?: '?'}"
    String message = approvalMessage(gate, c.env, c.stagingUrl)
    String ok = c.ok ?: "Deploy to ${c.env}"

    milestone(label: "mlci: waiting for ${c.env} approval")
    String approver = null
    Long waitStarted = nowMillis()
    try {
        // One timeout around every question and refresh: the whole wait stays within timeoutHours.
        timeout(time: c.timeoutHours as int, unit: 'HOURS') {
            if (c.shadow == null) {
                // With submitterParameter and no parameters, input returns the approver's user id.
                approver = input(id: 'mlciApprove', message: message, ok: ok,
                    submitter: c.submitter, submitterParameter: 'APPROVER')
            } else {
                approver = askWithShadow(c, message, ok)
            }
        }
    } catch (InterruptedException interrupted) {
        // FlowInterruptedException: a user pressed Abort, the timeout fired, or the build was stopped.
        // Say which, then let it propagate: the build must end ABORTED and no later stage may deploy.
        Boolean timedOut = waitedFor(waitStarted, c.timeoutHours as int)
        String why = "NOT deployed to ${c.env}: ${what} was not approved: " +
            "${interruptionReason(interrupted, c.timeoutHours, timedOut)}. Nothing was deployed."
        echo(why)
        currentBuild.description = oneLine("${currentBuild.description ?: ''} | ${why}".toString())
        throw interrupted
    }
    milestone(label: "mlci: ${c.env} approved")
    echo("mlciApprove: ${what} approved for ${c.env} by ${approver}")
    return approver
}

/**
 * Asks with the shadow report's summary; the approver may refresh it (its figures grow while the
 * approval waits). The closure runs only here, before each question (it may take an agent for a
 * moment), never while input waits. Returns the approver.
 */
String askWithShadow(Map c, String message, String ok) {
    String refresh = 'Refresh the shadow report'
    while (true) {
        String shadowLine = shadowSummary(c.shadow, (c.gate ?: [:]).version)
        Map answer = input(id: 'mlciApprove', message: "${message}\n${shadowLine}".toString(), ok: 'Submit',
            submitter: c.submitter, submitterParameter: 'APPROVER',
            parameters: [choice(name: 'MLCI_ACTION', choices: [ok, refresh],
                description: "${ok}, or fetch the shadow report again and ask again".toString())])
        if (answer.MLCI_ACTION != refresh) {
            return answer.APPROVER as String
        }
        echo("mlciApprove: ${answer.APPROVER} asked for a fresh shadow report")
    }
}

/** The shadow line of the message: the report's summary, or why there is none. */
String shadowSummary(Closure shadow, Object version) {
    Map report
    try {
        report = shadow.call() as Map
    } catch (InterruptedException interrupted) {
        throw interrupted
    } catch (Exception failed) {
        // The approval does not depend on the shadow: say it is unavailable and still ask.
        return oneLine("Shadow report unavailable: ${failed.message}".toString())
    }
    return shadowLine(report, version)
}

/**
 * The report's summary as mlci words it (mirror OFF, counts, p99 only from 100 answers), or, when the
 * candidate it measured is not VERSION (the one being approved), that instead: its figures are not
 * that version's.
 */
@NonCPS
String shadowLine(Map report, Object version = null) {
    if (report == null) {
        return 'Shadow: no shadow traffic configured (environments.production.shadow in mlci.yaml)'
    }
    String measured = report.candidate_version == null ? null : String.valueOf(report.candidate_version)
    if (version != null && measured != String.valueOf(version)) {
        String env = report.env ?: 'staging'
        String served = measured == null ? 'an unknown version' : "v${measured}"
        String why = "${env} serves ${served}, not v${version}: this report is not about the version being approved"
        return oneLine("Shadow: ${why}".toString())
    }
    Map comparison = report.comparison instanceof Map ? report.comparison as Map : [:]
    if (comparison.mirrored == 0) {
        return oneLine("Shadow: no mirrored requests yet (${report.summary ?: 'no summary'})".toString())
    }
    return oneLine("Shadow: ${report.summary ?: 'the report has no summary'}".toString())
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

/** Milliseconds since the build started (RunWrapper.getDuration: whitelisted, and running builds count up). */
@NonCPS
Long nowMillis() {
    return currentBuild.duration as Long
}

/** Whether the whole timeout elapsed since STARTED. */
@NonCPS
Boolean waitedFor(Long started, int hours) {
    return nowMillis() - started >= hours * 3600L * 1000L
}

/**
 * Why the wait ended. The input step's timeout aborts it as "Rejected by SYSTEM" (not with the
 * timeout's own cause), so the time waited decides. The causes that would name the user are not
 * read (FlowInterruptedException.getCauses is not whitelisted): Jenkins logs them itself.
 */
@NonCPS
String interruptionReason(Throwable interrupted, Object timeoutHours, Boolean timedOut) {
    if (timedOut) {
        return "approval timed out (no answer within ${timeoutHours} h)"
    }
    if (!(interrupted instanceof FlowInterruptedException)) {
        return 'the build was interrupted'
    }
    return 'aborted before the timeout (who aborted is logged just above: "Rejected by" or "Aborted by")'
}

@NonCPS
String number(Object value) {
    return value instanceof Number ? String.format('%.4f', value as double) : String.valueOf(value)
}

/**
 * The build description is plain text (Jenkins' default markup formatter): one line, without
 * control characters (model names are untrusted), leading separators dropped.
 */
@NonCPS
String oneLine(String text) {
    return text.replaceAll('[\\s\\p{Cntrl}\\u2028\\u2029]+', ' ').replaceAll('^[ |]+', '').trim()
}
