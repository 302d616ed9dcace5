package io.mlci

import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException
import org.junit.Before
import org.junit.Test

/** Tests of vars/mlciPipeline.groovy, the whole line as one step. */
class MlciPipelineStepTest extends LibraryTestBase {

    @Before
    void givenReports() {
        givenAllReports()
    }

    @Test
    void 'on main it runs every stage in order and deploys production with the approver'() {
        Map result = step('mlciPipeline') as Map

        assert events.findAll { it.startsWith('stage:') } == JenkinsfileTest.STAGES.collect { "stage:${it}".toString() }
        assert mlciCommandOrder() == ['test', 'train', 'gate', 'build', 'deploy', 'deploy']
        assert mlciCalls('deploy')*.env*.MLCI_ENV == ['staging', 'production']
        assert mlciCalls('deploy')[1].env.MLCI_APPROVER == 'alice'
        assert events.indexOf('input') < events.lastIndexOf('sh:deploy')
        assert result.approver == 'alice'
        assert build.description.contains('Production: iris v3 (green), approved by alice')
        assert events.last() == 'archive:reports/**'
    }

    @Test
    void 'a feature branch stops after Gate'() {
        envVars.BRANCH_NAME = 'feature/x'

        step('mlciPipeline')

        assert mlciCommandOrder() == ['test', 'train', 'gate']
        assert inputs.isEmpty()
        assert log.any { it.contains('Stopping after Gate') }
    }

    @Test
    void 'a pull request against main stops after Gate'() {
        envVars.BRANCH_NAME = 'main'
        envVars.CHANGE_ID = '42'

        step('mlciPipeline')

        assert mlciCommandOrder() == ['test', 'train', 'gate']
    }

    @Test
    void 'the deploy branch is configurable'() {
        envVars.BRANCH_NAME = 'release'

        step('mlciPipeline', [deployBranch: 'release'])

        assert mlciCommandOrder().count('deploy') == 2
    }

    @Test
    void 'no approval means no production deploy'() {
        inputAnswer = { Map args -> throw new FlowInterruptedException('ABORTED', 'Rejected') }

        Map result = step('mlciPipeline') as Map

        assert mlciCalls('deploy')*.env*.MLCI_ENV == ['staging']
        assert result.deployed == null
        assert build.result == 'ABORTED'
    }

    @Test
    void 'reports are published even when a stage fails'() {
        exitCode('train', 2)

        assert stepError('mlciPipeline').contains('exit 2')
        assert events.last() == 'archive:reports/**'
        assert !mlciCalls('gate')
    }
}
