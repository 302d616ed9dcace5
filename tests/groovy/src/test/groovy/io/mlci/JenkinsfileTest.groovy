package io.mlci

import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException
import org.junit.Before
import org.junit.Test

/** The root Jenkinsfile, run through DeclarativeRun against the real library steps. */
class JenkinsfileTest extends LibraryTestBase {

    /** The canonical stage names (`mlci pipeline stages`), in order. */
    static final List<String> STAGES = ['Setup', 'Test', 'Train', 'Gate', 'Build images', 'Deploy staging',
                                        'Approve', 'Deploy production']

    @Before
    void givenReports() {
        givenAllReports()
        envVars.JOB_NAME = 'ml/mlci/main'
    }

    @Test
    void 'declares the canonical stages in order and loads the library from the same branch'() {
        envVars.BRANCH_NAME = 'feature/x'

        DeclarativeRun run = runJenkinsfile()

        assert run.stages*.name == STAGES
        assert events[0] == 'library:mlci@feature/x'
    }

    @Test
    void 'has the options: timestamps, build discarder, no concurrent builds, overall timeout'() {
        DeclarativeRun run = runJenkinsfile()

        assert run.options*.name.containsAll(['timestamps', 'buildDiscarder', 'disableConcurrentBuilds', 'timeout'])
        Map timeout = run.options.find { it.name == 'timeout' }.args[0] as Map
        assert timeout.unit == 'HOURS' && (timeout.time as int) > 24
    }

    @Test
    void 'a feature branch stops after Gate, deploys nothing and publishes the comparison'() {
        envVars.BRANCH_NAME = 'feature/better-model'

        DeclarativeRun run = runJenkinsfile()

        assert run.ran == ['Setup', 'Test', 'Train', 'Gate']
        assert run.skipped == ['Build images', 'Deploy staging', 'Approve', 'Deploy production']
        assert mlciCommandOrder() == ['test', 'train', 'gate']
        assert inputs.isEmpty()
        assert !events.any { it.startsWith('lock:') }: 'a build that does not deploy never waits for a lock'
        assert build.result == 'SUCCESS'
        assert build.description.contains(gateReport().table)
        assert events.contains('archive:reports/gate.json, reports/gate-table.txt')
        assert events.contains('archive:reports/**')
        assert events.contains('junit:reports/junit.xml')
        assert events.contains('recordCoverage:reports/coverage.xml')
    }

    @Test
    void 'a pull request into main deploys nothing'() {
        envVars.BRANCH_NAME = 'PR-12'
        envVars.CHANGE_ID = '12'
        envVars.CHANGE_TARGET = 'main'

        DeclarativeRun run = runJenkinsfile()

        assert run.ran == ['Setup', 'Test', 'Train', 'Gate']
        assert !mlciCalls('deploy')
    }

    @Test
    void 'a pull request from a branch named main deploys nothing either'() {
        envVars.BRANCH_NAME = 'main'
        envVars.CHANGE_ID = '13'

        runJenkinsfile()

        assert !mlciCalls('deploy') && inputs.isEmpty()
    }

    @Test
    void 'main runs staging, then approval, then production under the production lock'() {
        envVars.BRANCH_NAME = 'main'

        DeclarativeRun run = runJenkinsfile()

        assert run.ran == STAGES
        assert mlciCommandOrder() == ['test', 'train', 'gate', 'build', 'deploy', 'deploy']
        List<ShCall> deploys = mlciCalls('deploy')
        assert deploys*.env*.MLCI_ENV == ['staging', 'production']
        int staging = events.indexOf('sh:deploy')
        int approval = events.indexOf('input')
        int production = events.lastIndexOf('sh:deploy')
        assert staging < approval && approval < production
        assert deploys[1].locks == ['mlci-mlci-production'] as Set
        assert events.indexOf('lock:mlci-mlci-production') < production
        assert events.indexOf('lock:mlci-mlci-production') > approval
        assert deploys[1].env.MLCI_APPROVER == 'alice'
        assert inputs[0].submitter == 'mlci-approvers'
        assert deploys[0].locks == ['mlci-mlci-staging'] as Set
        assert build.result == 'SUCCESS'
        assert build.description.startsWith('Production: model v3 (green), approved by alice')
    }

    @Test
    void 'the test stage leaves publishing to post, which publishes once'() {
        runJenkinsfile()

        assert events.count('junit:reports/junit.xml') == 1
        assert events.indexOf('post:always') < events.indexOf('junit:reports/junit.xml')
    }

    @Test
    void 'an aborted approval means no production deploy and an ABORTED build'() {
        inputAnswer = { Map args -> throw new FlowInterruptedException('ABORTED', 'Rejected by bob') }

        DeclarativeRun run = runJenkinsfile()

        assert mlciCalls('deploy')*.env*.MLCI_ENV == ['staging']
        assert run.skipped == ['Deploy production']
        assert !events.contains('lock:mlci-mlci-production')
        assert build.result == 'ABORTED'
        assert build.description.contains('Production NOT deployed')
        assert log.any { it.contains('nothing was deployed to production') }
        assert events.contains('archive:reports/**')
    }

    @Test
    void 'an approval timeout means no production deploy'() {
        helper.registerAllowedMethod('timeout', [Map, Closure], { Map args, Closure body ->
            throw new FlowInterruptedException('ABORTED', 'Timeout has been exceeded')
        })

        runJenkinsfile()

        assert mlciCalls('deploy')*.env*.MLCI_ENV == ['staging']
        assert build.result == 'ABORTED'
    }

    @Test
    void 'a failed production verification fails the build and says the rollback already happened'() {
        onCommand['deploy'] = { ShCall call ->
            if (call.env.MLCI_ENV == 'production') {
                exitCode('deploy', 1)
            }
        }

        DeclarativeRun run = runJenkinsfile()

        assert build.result == 'FAILURE'
        assert run.failure.message.contains('ALREADY ROLLED BACK')
        assert log.any { it.contains('already been rolled back by mlci deploy') }
        assert events.contains('unlock:mlci-mlci-production')
    }

    @Test
    void 'a failed gate on main stops before building images'() {
        givenFile('reports/gate.json', gateReport(passed: false, reasons: ['worse than production']))
        exitCode('gate', 1)

        DeclarativeRun run = runJenkinsfile()

        assert run.ran == ['Setup', 'Test', 'Train', 'Gate']
        assert !mlciCalls('build')
        assert build.result == 'FAILURE'
        assert build.description.startsWith('Gate FAILED')
    }

    @Test
    void 'the deploy branch is the environment value MLCI_DEPLOY_BRANCH'() {
        String jenkinsfile = new File(ROOT, 'Jenkinsfile').text
        assert jenkinsfile.contains("MLCI_DEPLOY_BRANCH = 'main'")
        envVars.BRANCH_NAME = 'main'
        String changed = jenkinsfile.replace("MLCI_DEPLOY_BRANCH = 'main'", "MLCI_DEPLOY_BRANCH = 'release'")
        File copy = new File(ROOT, 'tests/groovy/target/Jenkinsfile.release')
        copy.text = changed
        DeclarativeRun run = new DeclarativeRun(this)
        helper.registerAllowedMethod('pipeline', [Closure], { Closure body -> run.execute(body) })
        loadScript('tests/groovy/target/Jenkinsfile.release').run()

        assert run.ran == ['Setup', 'Test', 'Train', 'Gate']
    }
}
