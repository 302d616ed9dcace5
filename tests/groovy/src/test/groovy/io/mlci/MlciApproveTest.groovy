package io.mlci

import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException
import org.junit.Before
import org.junit.Test

class MlciApproveTest extends LibraryTestBase {

    @Before
    void givenReports() {
        givenFile('reports/gate.json', gateReport())
        givenFile('reports/deploy-staging.json', deployReport('staging'))
    }

    @Test
    void 'asks the configured group, between two milestones, within 24 hours, and returns the approver'() {
        String approver = step('mlciApprove', [submitter: 'ml-leads'])

        assert approver == 'alice'
        assert events == ['milestone:mlci: waiting for production approval', 'timeout:24 HOURS', 'input',
                          'milestone:mlci: production approved']
        Map input = inputs[0]
        assert input.submitter == 'ml-leads'
        assert input.submitterParameter == 'APPROVER'
        assert input.ok == 'Deploy to production'
    }

    @Test
    void 'the message shows the model, the version, the gate table and the staging URL'() {
        step('mlciApprove')

        String message = inputs[0].message
        assert message.startsWith('Deploy iris v3 to production? (production now runs: v2)')
        assert message.contains('Staging: http://localhost:8200')
        assert message.contains(gateReport().table)
        assert message.contains('Approvers: mlci-approvers')
    }

    @Test
    void 'the group and the timeout come from the environment or the parameters'() {
        envVars.MLCI_APPROVERS = 'release-managers'

        step('mlciApprove', [timeoutHours: 4])

        assert inputs[0].submitter == 'release-managers'
        assert timeouts[0] == [time: 4, unit: 'HOURS']
    }

    @Test
    void 'an abort marks the build ABORTED with a clear description and returns null'() {
        inputAnswer = { Map args -> throw new FlowInterruptedException('ABORTED', 'Rejected by bob') }

        Object approver = step('mlciApprove')

        assert approver == null
        assert build.result == 'ABORTED'
        assert build.description.contains('Production NOT deployed: iris v3 was not approved')
        assert log.any { it.contains('Production NOT deployed') }
        assert !events.contains('milestone:mlci: production approved')
        assert !events.any { it.startsWith('error:') }
    }

    @Test
    void 'a timeout is handled the same way'() {
        helper.registerAllowedMethod('timeout', [Map, Closure], { Map args, Closure body ->
            events << 'timeout'
            throw new FlowInterruptedException('ABORTED', 'Timeout has been exceeded')
        })

        assert step('mlciApprove') == null
        assert build.result == 'ABORTED'
        assert build.description.contains('no answer within 24 h')
        assert !events.contains('input')
    }

    @Test
    void 'without reports the approver is told they are missing'() {
        files.clear()

        step('mlciApprove')

        assert inputs[0].message.contains('No gate table (reports/gate.json missing).')
        assert inputs[0].message.contains('Staging: unknown (no reports/deploy-staging.json)')
    }

    @Test
    void 'an empty group is refused'() {
        assert stepError('mlciApprove', [submitter: '']).contains("missing required parameter 'submitter'")
        assert inputs.isEmpty()
    }
}
