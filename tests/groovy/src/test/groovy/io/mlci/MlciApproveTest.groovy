package io.mlci

import hudson.model.Result
import jenkins.model.CauseOfInterruption
import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException
import org.jenkinsci.plugins.workflow.steps.TimeoutStepExecution
import org.jenkinsci.plugins.workflow.support.steps.input.Rejection
import org.junit.Test

class MlciApproveTest extends LibraryTestBase {

    /** An abort before the timeout: who did it is in Jenkins' own log line (the causes are not whitelisted). */
    static final String ABORTED_EARLY = 'aborted before the timeout (who aborted is logged just above: ' +
        '"Rejected by" or "Aborted by")'

    static final String TABLE_URL = 'https://jenkins.example.com/job/ml/job/mlci/job/main/7/artifact/reports/gate-table.txt'

    /** What mlciGate returns for a passed gate against production v2. */
    Map gate(Map overrides = [:]) {
        return [model: 'iris', version: '3', passed: true, blocking: true, metric: 'accuracy', candidate: 0.97,
                production: 0.95, productionVersion: '2', runId: 'r123', runUrl: null, tableUrl: TABLE_URL] + overrides
    }

    /** Runs the step and returns what it threw. */
    Throwable interruption(Map config) {
        try {
            step('mlciApprove', config)
        } catch (InterruptedException e) {
            return e
        }
        throw new AssertionError("mlciApprove was expected to propagate the interruption; events: ${events}")
    }

    /** A workspace step called from mlciApprove would need a node. */
    void failOnWorkspaceSteps() {
        ['sh', 'readJSON', 'readFile', 'writeFile', 'fileExists', 'archiveArtifacts', 'readYaml'].each { String name ->
            helper.allowedMethodCallbacks.keySet().findAll { it.name == name }.each { sig ->
                helper.registerAllowedMethod(sig, { Object... args ->
                    throw new AssertionError("mlciApprove called ${name}, which needs a node")
                })
            }
        }
    }

    @Test
    void 'asks the configured group, between two milestones, within 24 hours, and returns the approver'() {
        failOnWorkspaceSteps()
        files.clear()

        String approver = step('mlciApprove', [gate: gate(), submitter: 'ml-leads'])

        assert approver == 'alice'
        assert events == ['milestone:mlci: waiting for production approval', 'timeout:24 HOURS', 'input',
                          'milestone:mlci: production approved']
        Map input = inputs[0]
        assert input.submitter == 'ml-leads'
        assert input.submitterParameter == 'APPROVER'
        assert input.ok == 'Deploy to production'
        assert shCalls.isEmpty()
    }

    @Test
    void 'the message is one line (model, version, metric candidate vs production, verdict) and the gate table link'() {
        step('mlciApprove', [gate: gate(), stagingUrl: 'http://localhost:8200'])

        assert inputs[0].message == 'Deploy iris v3 to production? accuracy 0.9700 vs production v2 0.9500; ' +
            "gate PASSED. Staging: http://localhost:8200\nGate table: ${TABLE_URL}"
    }

    @Test
    void 'a first build says nothing is in production yet'() {
        step('mlciApprove', [gate: gate(production: null, productionVersion: null)])

        assert inputs[0].message.startsWith('Deploy iris v3 to production? accuracy 0.9700 vs nothing in production ' +
            'yet; gate PASSED.')
    }

    @Test
    void 'without a gate summary the approver is told so'() {
        step('mlciApprove')

        assert inputs[0].message == "Deploy unknown model v? to production? metric null vs nothing in production yet; " +
            'gate not run.\nGate table: not archived (no gate summary given)'
    }

    @Test
    void 'the group, the environment and the timeout come from the environment or the parameters'() {
        envVars.MLCI_APPROVERS = 'release-managers'

        step('mlciApprove', [gate: gate(), env: 'eu-production', timeoutHours: 4])

        assert inputs[0].submitter == 'release-managers'
        assert inputs[0].ok == 'Deploy to eu-production'
        assert timeouts[0] == [time: 4, unit: 'HOURS']
        assert events[0] == 'milestone:mlci: waiting for eu-production approval'
    }

    @Test
    void 'a user pressing Abort propagates: the build ends ABORTED, the reason is logged, nothing approved'() {
        FlowInterruptedException abort = new FlowInterruptedException(Result.ABORTED, new Rejection('bob'))
        inputAnswer = { Map args -> throw abort }

        Throwable thrown = interruption([gate: gate()])

        assert thrown.is(abort)
        assert build.description == 'NOT deployed to production: iris v3 was not approved: ' + ABORTED_EARLY +
            '. Nothing was deployed.'
        assert log.any { it.contains('NOT deployed to production: iris v3 was not approved: aborted before the timeout') }
        assert !events.contains('milestone:mlci: production approved')
    }

    @Test
    void 'the stop button (UserInterruption) propagates too'() {
        inputAnswer = { Map args ->
            throw new FlowInterruptedException(Result.ABORTED, new CauseOfInterruption.UserInterruption('carol'))
        }

        assert interruption([gate: gate()]) instanceof FlowInterruptedException
        assert build.description.contains('was not approved: ' + ABORTED_EARLY)
    }

    /** What a controller does when the approval's timeout fires: time passed, then "Rejected by SYSTEM". */
    void timesOutAfter(long hours) {
        inputAnswer = { Map args ->
            clockMillis += hours * 3600_000L
            throw new FlowInterruptedException(Result.ABORTED, new Rejection('SYSTEM'))
        }
    }

    @Test
    void 'a timeout, which the input step reports as Rejected by SYSTEM, is told by the time waited'() {
        timesOutAfter(8)

        FlowInterruptedException thrown = interruption([gate: gate(), timeoutHours: 8]) as FlowInterruptedException

        assert thrown.result == Result.ABORTED
        assert build.description == 'NOT deployed to production: iris v3 was not approved: approval timed out ' +
            '(no answer within 8 h). Nothing was deployed.'
        assert log.any { it.contains('approval timed out (no answer within 8 h)') }
        assert !events.contains('milestone:mlci: production approved')
    }

    @Test
    void 'a rejection by SYSTEM before the timeout is not called a timeout'() {
        inputAnswer = { Map args ->
            clockMillis += 3600_000L
            throw new FlowInterruptedException(Result.ABORTED, new Rejection('SYSTEM'))
        }

        interruption([gate: gate(), timeoutHours: 8])

        assert build.description == 'NOT deployed to production: iris v3 was not approved: ' + ABORTED_EARLY +
            '. Nothing was deployed.'
    }

    @Test
    void 'the description is plain text on one line (model names are untrusted)'() {
        build.description = 'Gate PASSED: iris v3'
        inputAnswer = { Map args -> throw new FlowInterruptedException(Result.ABORTED, new Rejection('bob')) }

        interruption([gate: gate(model: 'ir<b>is\nFAKE\u0007LINE')])

        assert build.description == 'Gate PASSED: iris v3 | NOT deployed to production: ir<b>is FAKE LINE v3 was ' +
            'not approved: ' + ABORTED_EARLY + '. Nothing was deployed.'
    }

    @Test
    void 'an empty group is refused'() {
        assert stepError('mlciApprove', [submitter: '']).contains("missing required parameter 'submitter'")
        assert inputs.isEmpty()
    }

    /** A shadow report as `mlci shadow report --json` writes it (reports/shadow-staging.json). */
    Map shadowReport(int mirrored, String summary) {
        return [env: 'staging', source: 'production', share: 0.1, on: true, candidate_version: '3',
                production_version: '2', comparison: [mirrored: mirrored, compared: mirrored], summary: summary]
    }

    static final String FIRST = 'shadow production -> staging (v3 vs v2): 40 requests compared of 41 mirrored, ' +
        '1 unmatched, agreement 97.50%, candidate p50 3.1 ms p99 n/a (<100 answers), 0 candidate errors'
    static final String SECOND = 'shadow production -> staging (v3 vs v2): 90 requests compared of 90 mirrored, ' +
        '0 unmatched, agreement 98.89%, candidate p50 3.0 ms p99 n/a (<100 answers), 0 candidate errors'

    /** The shadow closure takes a node (as mlciPipeline's does); input must never run inside it. */
    int nodesHeld = 0
    List<Integer> nodesAtInput = []

    /** The node a caller's closure takes (the test's own: the closure is written here, not in the library). */
    void node(String label, Closure body) {
        events << "node:${label}".toString()
        nodesHeld++
        try {
            body.call()
        } finally {
            nodesHeld--
        }
    }

    Closure shadowFrom(List<Map> reports) {
        List<Map> left = new ArrayList<Map>(reports)
        return {
            node('linux') {
                events << 'shadow report'
            }
            return left.remove(0)
        }
    }

    void answers(List<String> actions) {
        List<String> left = new ArrayList<String>(actions)
        inputAnswer = { Map args ->
            nodesAtInput << nodesHeld
            return [MLCI_ACTION: left.remove(0), APPROVER: 'alice']
        }
    }

    @Test
    void 'the shadow summary is shown and the input offers Deploy or Refresh'() {
        answers(['Deploy to production'])

        String approver = step('mlciApprove', [gate: gate(), shadow: shadowFrom([shadowReport(40, FIRST)])])

        assert approver == 'alice'
        assert inputs[0].message.endsWith("Gate table: ${TABLE_URL}\nShadow: ${FIRST}")
        Map choice = inputs[0].parameters[0]
        assert choice.name == 'MLCI_ACTION'
        assert choice.choices == ['Deploy to production', 'Refresh the shadow report']
        assert inputs[0].submitterParameter == 'APPROVER'
        assert events == ['milestone:mlci: waiting for production approval', 'timeout:24 HOURS', 'node:linux',
                          'shadow report', 'input', 'milestone:mlci: production approved']
        assert nodesAtInput == [0]
    }

    @Test
    void 'refresh calls the closure again and asks again with the new figures, within the one timeout'() {
        answers(['Refresh the shadow report', 'Deploy to production'])

        String approver = step('mlciApprove', [gate: gate(), timeoutHours: 8,
            shadow: shadowFrom([shadowReport(40, FIRST), shadowReport(90, SECOND)])])

        assert approver == 'alice'
        assert inputs.size() == 2
        assert inputs[0].message.endsWith("Shadow: ${FIRST}")
        assert inputs[1].message.endsWith("Shadow: ${SECOND}")
        assert events == ['milestone:mlci: waiting for production approval', 'timeout:8 HOURS',
                          'node:linux', 'shadow report', 'input', 'node:linux', 'shadow report', 'input',
                          'milestone:mlci: production approved']
        assert nodesAtInput == [0, 0]
    }

    @Test
    void 'no shadow configured and no mirrored request yet are said plainly'() {
        answers(['Deploy to production'])
        step('mlciApprove', [gate: gate(), shadow: { -> null }])
        assert inputs[0].message.endsWith('\nShadow: no shadow traffic configured (environments.production.shadow ' +
            'in mlci.yaml)')

        answers(['Deploy to production'])
        String empty = 'shadow production -> staging (v3 vs v2): no compared request yet (0 mirrored, 0 unmatched, ' +
            '0 candidate errors, 0 production errors)'
        step('mlciApprove', [gate: gate(), shadow: { -> shadowReport(0, empty) }])
        assert inputs[1].message.endsWith("\nShadow: no mirrored requests yet (${empty})")
    }

    @Test
    void 'the summary is shown as mlci words it, mirror OFF included'() {
        answers(['Deploy to production'])
        String off = "mirror OFF: ${FIRST}".toString()

        step('mlciApprove', [gate: gate(), shadow: { -> shadowReport(40, off) }])

        assert inputs[0].message.endsWith("\nShadow: ${off}")
    }

    @Test
    void 'a shadow report about another version than the one approved says so instead of its figures'() {
        answers(['Deploy to production', 'Deploy to production'])

        step('mlciApprove', [gate: gate(), shadow: { -> shadowReport(40, FIRST) + [candidate_version: '4'] }])
        step('mlciApprove', [gate: gate(), shadow: { -> shadowReport(40, FIRST) + [candidate_version: null] }])

        assert inputs[0].message.endsWith('\nShadow: staging serves v4, not v3: this report is not about the ' +
            'version being approved')
        assert !inputs[0].message.contains('requests compared')
        assert inputs[1].message.endsWith('\nShadow: staging serves an unknown version, not v3: this report is not ' +
            'about the version being approved')
    }

    @Test
    void 'a failing shadow report does not block the approval: the message says it is unavailable'() {
        answers(['Deploy to production'])

        String approver = step('mlciApprove', [gate: gate(), shadow: { -> throw new Exception('exit 3: unreachable') }])

        assert approver == 'alice'
        assert inputs[0].message.endsWith('\nShadow report unavailable: exit 3: unreachable')
    }

    @Test
    void 'with a shadow report, Abort after a refresh still propagates and nothing is approved'() {
        FlowInterruptedException abort = new FlowInterruptedException(Result.ABORTED, new Rejection('bob'))
        int asked = 0
        inputAnswer = { Map args ->
            asked++
            if (asked == 1) {
                return [MLCI_ACTION: 'Refresh the shadow report', APPROVER: 'bob']
            }
            throw abort
        }

        Throwable thrown = interruption([gate: gate(), shadow: shadowFrom([shadowReport(40, FIRST),
                                                                          shadowReport(90, SECOND)])])

        assert thrown.is(abort)
        assert build.description == 'NOT deployed to production: iris v3 was not approved: ' + ABORTED_EARLY +
            '. Nothing was deployed.'
        assert !events.contains('milestone:mlci: production approved')
    }

    @Test
    void 'with a shadow report, a timeout during a later question is still told by the total time waited'() {
        int asked = 0
        inputAnswer = { Map args ->
            asked++
            clockMillis += 4 * 3600_000L
            if (asked == 1) {
                return [MLCI_ACTION: 'Refresh the shadow report', APPROVER: 'alice']
            }
            throw new FlowInterruptedException(Result.ABORTED, new Rejection('SYSTEM'))
        }

        interruption([gate: gate(), timeoutHours: 8, shadow: shadowFrom([shadowReport(40, FIRST),
                                                                         shadowReport(90, SECOND)])])

        assert timeouts == [[time: 8, unit: 'HOURS']]
        assert build.description == 'NOT deployed to production: iris v3 was not approved: approval timed out ' +
            '(no answer within 8 h). Nothing was deployed.'
    }

    @Test
    void 'shadow must be a closure'() {
        try {
            step('mlciApprove', [gate: gate(), shadow: 'reports/shadow-staging.json'])
            assert false: 'expected an error'
        } catch (Exception e) {
            assert e.message.contains('shadow must be a closure')
        }
        assert inputs.isEmpty()
    }
}
