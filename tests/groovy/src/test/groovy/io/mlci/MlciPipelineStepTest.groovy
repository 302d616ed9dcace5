package io.mlci

import hudson.AbortException
import hudson.model.Result
import hudson.remoting.ChannelClosedException
import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException
import org.jenkinsci.plugins.workflow.support.steps.input.Rejection
import org.junit.Before
import org.junit.Test

/**
 * vars/mlciPipeline.groovy, the whole line as one step (a consumer's one-line Jenkinsfile), on a
 * fake controller where every node is a fresh workspace and the approval must run on no node.
 */
class MlciPipelineStepTest extends PipelineTestBase {

    @Before
    void givenReports() {
        givenAllReports()
        givenFile('mlci.yaml', 'project: iris\n')
        // Where the mlci wheel comes from (mlciSetup refuses to guess pypi.org): a global property.
        envVars.MLCI_PIP_INDEX_URL = 'https://pypi.example.com/simple'
    }

    /** Pull request 43 from the fork 'someone', on a job whose administrator set MLflow credentials. */
    void givenForkPullRequest() {
        envVars.BRANCH_NAME = 'PR-43'
        envVars.CHANGE_ID = '43'
        envVars.CHANGE_FORK = 'someone'
        envVars.MLCI_MLFLOW_CREDENTIALS_ID = 'mlflow-team'
    }

    List<String> stagesRun() {
        return events.findAll { it.startsWith('stage:') }.collect { it - 'stage:' }
    }

    String errorOf(Map config = null) {
        try {
            runScripted('mlciPipeline', config)
        } catch (AbortException e) {
            return e.message
        }
        throw new AssertionError((Object) "mlciPipeline was expected to fail; events: ${events}".toString())
    }

    @Test
    void 'on main it runs every stage in order and deploys production with the approver'() {
        Map result = runScripted('mlciPipeline') as Map

        assert stagesRun() == JenkinsfileTest.STAGES
        assert mlciCommandOrder() == ['test', 'train', 'gate', 'build', 'deploy', 'deploy']
        assert mlciCalls('deploy')*.env*.MLCI_ENV == ['staging', 'production']
        assert mlciCalls('deploy')*.env*.MLCI_VERSION == ['3', '3']
        assert mlciCalls('deploy')[1].env.MLCI_APPROVER == 'alice'
        assert result.approver == 'alice'
        assert result.gate.version == '3'
        assert result.deployed.current.colour == 'green'
        assert build.description.contains('production: v3 (green), approved by alice')
        assert !build.description.contains('\n')
        assert build.result == null: 'nothing marked the build worse than SUCCESS'
    }

    @Test
    void 'no node is held while the approval waits, and each node is a fresh workspace fed by stash'() {
        runScripted('mlciPipeline')

        assert nodesAtInput == [[]]
        assert workspaces == 4
        assert events.findAll { it.startsWith('node:') }.unique() == ['node:docker && python3.11']
        assert events.count('checkout') == 4
        assert events.contains('stash:mlci-candidate:reports/gate-table.txt,reports/gate.json,reports/train.json')
        assert events.count('unstash:mlci-candidate') == 3
        assert events.count('unstash:mlci-images') == 2
        assert events.findAll { it.startsWith('archive:reports/**') }.size() == 4
    }

    @Test
    void 'the staging lock spans Deploy staging and Approve, newest build first, production has its own lock'() {
        runScripted('mlciPipeline')

        assert lockCalls.find { it.resource == 'mlci/ml/iris/staging' }.inversePrecedence == true
        int unlockStaging = events.indexOf('unlock:mlci/ml/iris/staging')
        assert events.indexOf('lock:mlci/ml/iris/staging') < events.indexOf('sh:deploy')
        assert events.indexOf('input') < unlockStaging
        assert events.indexOf('milestone:30:Approved') < unlockStaging
        assert unlockStaging < events.indexOf('lock:mlci/ml/iris/production')
        assert mlciCalls('deploy')*.locks == [['mlci/ml/iris/staging'] as Set, ['mlci/ml/iris/production'] as Set]
    }

    @Test
    void 'milestones increase and sit before the builds an overtaken build must not do'() {
        runScripted('mlciPipeline')

        assert milestones == milestones.sort(false) && milestones.unique(false) == milestones
        assert events.indexOf('milestone:10:Build images') < events.indexOf('sh:build')
        assert events.indexOf('milestone:20:Deploy staging') < events.indexOf('sh:deploy')
        assert events.indexOf('lock:mlci/ml/iris/production') < events.indexOf('milestone:40:Deploy production')
    }

    @Test
    void 'every stage has its own timeout, the approval the configured hours'() {
        runScripted('mlciPipeline', [timeouts: [train: 90], approvalHours: 8])

        // First the Setup-to-Gate group (20 + 30 + 90 + 15), then each stage's own.
        assert timeouts.findAll { it.unit == 'MINUTES' }*.time == [155, 20, 30, 90, 15, 45, 30, 30]
        assert timeouts.findAll { it.unit == 'HOURS' } == [[time: 8, unit: 'HOURS']]
    }

    @Test
    void 'the wait for every agent counts against a timeout'() {
        runScripted('mlciPipeline', [timeouts: [candidate: 200]])

        // Each node is asked for inside a timeout: an agent that never comes does not hang the build.
        assert timeoutsAtNode.size() == 4
        assert timeoutsAtNode.every { it > 0 }: "a node asked for outside any timeout: ${timeoutsAtNode}"
        assert events.indexOf('timeout:200 MINUTES') < events.findIndexOf { it.startsWith('node:') }
    }

    @Test
    void 'first build: nothing in production yet goes all the way'() {
        givenFile('reports/gate.json', gateReport(production: null, table: 'metric    candidate v3\naccuracy  0.970'))

        Map result = runScripted('mlciPipeline') as Map

        assert result.gate.productionVersion == null
        assert mlciCalls('deploy')*.env*.MLCI_ENV == ['staging', 'production']
        assert inputs[0].message.contains('nothing in production')
    }

    @Test
    void 'a feature branch stops after Gate on one node'() {
        envVars.BRANCH_NAME = 'feature/x'

        Map result = runScripted('mlciPipeline') as Map

        assert stagesRun() == ['Setup', 'Test', 'Train', 'Gate']
        assert mlciCommandOrder() == ['test', 'train', 'gate']
        assert inputs.isEmpty() && lockCalls.isEmpty() && workspaces == 1
        assert result.gate.passed && result.deployed == null
        assert log.any { it.contains('Stopping after Gate') }
    }

    @Test
    void 'a pull request against main stops after Gate'() {
        envVars.BRANCH_NAME = 'main'
        envVars.CHANGE_ID = '42'

        runScripted('mlciPipeline')

        assert mlciCommandOrder() == ['test', 'train', 'gate']
    }

    @Test
    void 'a failed gate on a pull request makes it UNSTABLE and builds nothing'() {
        envVars.BRANCH_NAME = 'PR-42'
        envVars.CHANGE_ID = '42'
        givenFile('reports/gate.json', gateReport(passed: false, reasons: ['accuracy 0.90 < 0.95']))
        exitCode('gate', 1)

        Map result = runScripted('mlciPipeline') as Map

        assert build.result == 'UNSTABLE'
        assert !result.gate.passed
        assert !mlciCalls('build') && !mlciCalls('deploy')
    }

    @Test
    void 'a failed gate on main fails the build before any image'() {
        givenFile('reports/gate.json', gateReport(passed: false, reasons: ['worse than production']))
        exitCode('gate', 1)

        assert errorOf().contains('Quality gate failed')
        assert !mlciCalls('build')
        assert events.contains('archive:reports/**')
    }

    @Test
    void 'a pull request from a fork runs Test only, with no credential'() {
        givenForkPullRequest()

        Map result = runScripted('mlciPipeline') as Map

        assert stagesRun() == ['Setup', 'Test']
        assert mlciCommandOrder() == ['test']
        assert !events.any { it.startsWith('withCredentials') }
        assert result.gate == null
        assert log.any { it.contains("comes from the fork 'someone'") }
    }

    @Test
    void 'a team whose administrator trusts forks lets their pull requests train and gate with the MLflow credentials'() {
        givenForkPullRequest()
        envVars.MLCI_TRUST_FORK_PULL_REQUESTS = 'true'

        runScripted('mlciPipeline')

        assert mlciCommandOrder() == ['test', 'train', 'gate']
        assert onlyMlciCall('train').env.MLFLOW_TRACKING_PASSWORD == 'secret-of-mlflow-team'
    }

    @Test
    void 'the deploy branch and the agent label are configurable'() {
        envVars.BRANCH_NAME = 'release'

        runScripted('mlciPipeline', [deployBranch: 'release', agentLabel: 'ml-docker'])

        assert mlciCommandOrder().count('deploy') == 2
        assert events.findAll { it.startsWith('node:') }.unique() == ['node:ml-docker']
    }

    @Test
    void 'every node installs the released mlci from the team index, never from the checkout'() {
        runScripted('mlciPipeline', [indexUrl: 'https://pypi.example.com/simple', findLinks: '/opt/wheels'])

        List<ShCall> setups = shCalls.findAll { it.label == 'mlci setup' }
        // One per node, plus the Test stage's private venv (mlciTest: the tests never run in the cached one).
        assert setups*.env*.MLCI_VENV == ['.venv', '.mlci/test-venv', '.venv', '.venv', '.venv']
        assert setups*.env*.MLCI_SOURCE.unique() == ['index']
        assert setups*.env*.MLCI_INDEX_URL.unique() == ['https://pypi.example.com/simple']
        assert setups*.env*.MLCI_FIND_LINKS.unique() == ['/opt/wheels']
        assert setups*.env*.MLCI_VERSION.unique() == [new File(ROOT, 'resources/io/mlci/VERSION').text.trim()]
    }

    @Test
    void 'a user aborting the approval ends the build ABORTED with nothing deployed to production'() {
        inputAnswer = { Map args -> throw new FlowInterruptedException(Result.ABORTED, new Rejection('bob')) }

        runScripted('mlciPipeline')

        assert build.result == 'ABORTED'
        assert mlciCalls('deploy')*.env*.MLCI_ENV == ['staging']
        assert !events.contains('lock:mlci/ml/iris/production')
        assert events.contains('unlock:mlci/ml/iris/staging')
    }

    @Test
    void 'an approval timeout ends the build ABORTED with nothing deployed to production'() {
        expireTimeouts = true

        runScripted('mlciPipeline')

        assert events.contains('timeout-expired:24 HOURS')
        assert build.result == 'ABORTED'
        // The input step reports its timeout as "Rejected by SYSTEM": the log must still say timed out.
        assert log.any { it.contains('was not approved: approval timed out (no answer within 24 h)') }
        assert mlciCalls('deploy')*.env*.MLCI_ENV == ['staging']
    }

    @Test
    void 'waiting at the staging lock, an older build is cancelled when the newest waiter gets the lock first'() {
        String staging = 'mlci/ml/iris/staging'
        givenNewerBuildTakesTheStagingLockFirst(staging)

        runScripted('mlciPipeline')

        // inversePrecedence: the newest waiter (#8) gets the staging lock, and its milestone 20 cancels #7.
        assert controller.events.contains("granted:${staging}:ml/mlci/main#8".toString())
        assert controller.events.contains('cancelled:ml/mlci/main#7:Superseded by #8')
        assert build.result == 'NOT_BUILT'
        assert events.contains("lock-wait:${staging}".toString()) && !events.contains("lock:${staging}".toString())
        assert !mlciCalls('deploy') && inputs.isEmpty()
        assert log.any { it.contains('superseded by a newer build') && it.contains('nothing was deployed to production') }
    }

    @Test
    void 'a newer build that fails after Build images still supersedes the older one waiting at the staging lock, and the log says what to do'() {
        // The Milestone Step plugin counts a build that ends, whatever its result, as past its last
        // milestone: #8 failing after milestone 10 cancels #7, queued at the staging lock with 10.
        String staging = 'mlci/ml/iris/staging'
        def (Controller.Build older, Controller.Build newer) = givenOlderBuildAtApprovalAndNewerQueued(staging)
        meanwhile { -> controller.complete(newer, 'FAILURE') }

        runScripted('mlciPipeline')

        assert controller.events.contains('cancelled:ml/mlci/main#7:Superseded by #8')
        assert build.result == 'NOT_BUILT'
        assert !mlciCalls('deploy')
        assert log.any { it.contains('if the build that superseded this one failed, start a new build') }
        // #6 keeps its lock and its approval: only older builds are cancelled.
        assert controller.holds(older, staging) && older.running
    }

    @Test
    void 'the newest of the builds queued at the staging lock gets it when this build is approved'() {
        String staging = 'mlci/ml/iris/staging'
        Controller.Build b8 = otherBuild(8)
        Controller.Build b9 = otherBuild(9)
        // While this build waits for its approval, #8 then #9 pass Build images and queue at staging.
        duringApproval { ->
            controller.pass(b8, 10)
            controller.acquire(b8, staging, true)
            controller.pass(b9, 10)
            controller.acquire(b9, staging, true)
        }

        runScripted('mlciPipeline')

        assert build.result == null || build.result == 'SUCCESS'
        assert mlciCalls('deploy')*.env*.MLCI_ENV == ['staging', 'production']
        assert controller.events.contains("granted:${staging}:ml/mlci/main#9".toString())
        controller.pass(b9, 20)
        assert b8.result == 'NOT_BUILT' && b8.cancelledBy == '#9'
    }

    @Test
    void 'reports are published even when a stage fails, and the node is given back'() {
        exitCode('train', 2)

        assert errorOf().contains('exit 2')
        assert events.contains('archive:reports/**')
        assert events.last().startsWith('endnode:')
        assert !mlciCalls('gate')
    }

    static final String SHADOW_YAML = 'project: mlci\nmodel:\n  name: iris\nenvironments:\n  production:\n' +
        '    shadow: {env: staging, share: 0.1}\n  staging: {}\n'

    /** `mlci shadow report` writes reports/shadow-staging.json; each call reports more compared requests. */
    void shadowReports() {
        int fetched = 0
        onCommand['shadow'] = { ShCall call ->
            fetched++
            givenFile('reports/shadow-staging.json', """{"env": "staging", "source": "production", "share": 0.1,
                "candidate_version": "3",
                "comparison": {"mirrored": ${fetched * 40}, "compared": ${fetched * 40}},
                "summary": "shadow production -> staging: ${fetched * 40} requests compared"}""".toString())
        }
    }

    @Test
    void 'with shadow traffic configured the approver sees its summary, may refresh it, and no node is held meanwhile'() {
        givenFile('mlci.yaml', SHADOW_YAML)
        shadowReports()
        List<String> actions = ['Refresh the shadow report', 'Deploy to production']
        inputAnswer = { Map args -> [MLCI_ACTION: actions.remove(0), APPROVER: 'alice'] }

        Map result = runScripted('mlciPipeline') as Map

        assert result.approver == 'alice'
        assert inputs.size() == 2
        assert inputs[0].message.endsWith('Shadow: shadow production -> staging: 40 requests compared')
        assert inputs[1].message.endsWith('Shadow: shadow production -> staging: 80 requests compared')
        assert nodesAtInput == [[], []]
        List<ShCall> shadow = mlciCalls('shadow')
        assert shadow.size() == 2
        assert shadow*.env*.MLCI_SHADOW_ENV == ['staging', 'staging']
        // Each fetch is its own short node, taken before the question, given back before input runs.
        assert workspaces == 6
        assert events.indexOf('sh:shadow') < events.indexOf('input')
        assert mlciCalls('deploy')[1].env.MLCI_APPROVER == 'alice'
    }

    @Test
    void 'with shadow traffic configured an abort after a refresh still propagates and nothing is deployed'() {
        givenFile('mlci.yaml', SHADOW_YAML)
        shadowReports()
        int asked = 0
        inputAnswer = { Map args ->
            asked++
            if (asked == 1) {
                return [MLCI_ACTION: 'Refresh the shadow report', APPROVER: 'bob']
            }
            throw new FlowInterruptedException(Result.ABORTED, new Rejection('bob'))
        }

        runScripted('mlciPipeline')

        assert build.result == 'ABORTED'
        assert inputs.size() == 2 && mlciCalls('shadow').size() == 2
        assert mlciCalls('deploy')*.env*.MLCI_ENV == ['staging']
        assert build.description.contains('was not approved: aborted before the timeout')
    }

    @Test
    void 'without shadow traffic configured (or shadow false) the approval asks as before, without an extra node'() {
        givenFile('mlci.yaml', SHADOW_YAML)

        runScripted('mlciPipeline', [shadow: false])

        assert !mlciCalls('shadow')
        assert inputs[0].parameters == null
        assert workspaces == 4
    }

    // ---- a lost agent, a timeout: the error that ends the build is the real one ------------------

    @Test
    void 'a production deploy hung on a lost agent ends ABORTED by its timeout, not with the archiving error'() {
        onCommand.deploy = { ShCall call ->
            if (call.env.MLCI_ENV == 'production') {
                loseAgentSilently()
            }
        }

        runScripted('mlciPipeline')

        assert build.result == 'ABORTED'
        assert events.contains('timeout-expired:30 MINUTES')
        assert log.any { it.startsWith('mlci: archiving the reports failed as well (org.jenkinsci.plugins.workflow.' +
            'steps.MissingContextVariableException: Required context class hudson.FilePath is missing') }
        assert log.any { it.startsWith('Build stopped (aborted, timed out, or superseded by a newer build) during ' +
            'Deploy production: the deploy may have been cut short.') && it.contains('`mlci status --env production`') }
    }

    @Test
    void 'an agent lost during Test fails the build with the lost agent, named, and says production was not touched'() {
        envVars.NODE_NAME = 'agent-3'
        onCommand.test = { ShCall call -> loseAgent() }

        Throwable thrown = null
        try {
            runScripted('mlciPipeline')
        } catch (ChannelClosedException e) {
            thrown = e
        }

        assert thrown != null: "the lost agent's error ends the build; events: ${events}"
        assert log.any { it.startsWith('mlci: the agent agent-3 was lost while this stage ran') }
        assert log.any { it.startsWith('mlci: publishing the test results failed as well') }
        assert log.any { it == 'Build failed (last stage entered: Test): see the first error above. Production was ' +
            'not touched by this build.' }
        assert !mlciCalls('train')
    }

    @Test
    void 'a failed production deploy points ops at mlci status, as the declarative Jenkinsfile does'() {
        onCommand.deploy = { ShCall call ->
            if (call.env.MLCI_ENV == 'production') {
                exitCodes.deploy = 1
            }
        }

        String error = errorOf()

        assert error.contains('mlci deploy')
        assert log.any { it.startsWith('Build failed in Deploy production: see the first error above.') }
    }

    // ---- the release policy is the administrator's ------------------------------------------

    @Test
    void 'a branch Jenkinsfile cannot make itself the deploy branch the administrator set'() {
        envVars.MLCI_DEPLOY_BRANCH = 'main'
        envVars.MLCI_APPROVERS = 'ml-leads'
        envVars.BRANCH_NAME = 'feature-x'

        String error = errorOf([deployBranch: 'feature-x', submitter: 'mallory'])

        assert error.contains("sets deployBranch 'feature-x', but the administrator's MLCI_DEPLOY_BRANCH is 'main'")
        assert shCalls.isEmpty() && inputs.isEmpty()
    }

    @Test
    void 'a Jenkinsfile may narrow the approvers the administrator set, never add to them'() {
        envVars.MLCI_APPROVERS = 'ml-leads, release-managers'

        assert errorOf([submitter: 'ml-leads,mallory']).contains("names [mallory] beyond the administrator's approvers")
        assert shCalls.isEmpty()

        runScripted('mlciPipeline', [submitter: 'release-managers'])

        assert inputs[0].submitter == 'release-managers'
    }

    @Test
    void 'no build parameter may set the policy: not the config, the approvers or the deploy branch'() {
        for (String name : ['MLCI_CONFIG', 'MLCI_APPROVERS', 'MLCI_DEPLOY_BRANCH']) {
            params.clear()
            params[name] = 'other'

            assert errorOf().contains("the build parameter ${name} is refused".toString())
        }
        assert shCalls.isEmpty()
    }

    @Test
    void 'a Jenkinsfile cannot trust fork pull requests the administrator does not trust'() {
        assert errorOf([trustForkPullRequests: true]).contains('fork pull requests stay untrusted')

        envVars.MLCI_TRUST_FORK_PULL_REQUESTS = 'true'
        runScripted('mlciPipeline', [trustForkPullRequests: true])

        assert mlciCalls('deploy').size() == 2
    }

    // ---- deploy credentials only where deploys run -------------------------------------------

    @Test
    void 'with a deploy label, tests run on the test agents, builds and deploys on the deploy agents with the SSH key'() {
        envVars.MLCI_DEPLOY_AGENT_LABEL = 'mlci-deploy'
        envVars.MLCI_SSH_CREDENTIALS_ID = 'docker-hosts-ssh'

        runScripted('mlciPipeline')

        assert events.findAll { it.startsWith('node:') } == ['node:docker && python3.11', 'node:mlci-deploy',
                                                              'node:mlci-deploy', 'node:mlci-deploy']
        assert mlciCalls().findAll { it.command in ['test', 'train', 'gate', 'build'] }.every { !it.env.SSH_AUTH_SOCK }
        assert mlciCalls('deploy').every { it.env.SSH_AUTH_SOCK }
        assert events.count('sshagent:docker-hosts-ssh') == 2
        assert !log.any { it.contains('run on the test agents') }
    }

    @Test
    void 'without a deploy label the build says deploys share the test agents'() {
        runScripted('mlciPipeline')

        assert log.any { it.contains('Build images and the deploys run on the test agents (docker && python3.11)') }
    }

    @Test
    void 'a Jenkinsfile cannot run its tests on the deploy agents or move the deploys'() {
        envVars.MLCI_DEPLOY_AGENT_LABEL = 'mlci-deploy'

        assert errorOf([agentLabel: 'mlci-deploy']).contains('runs its tests on the deploy agents')
        assert errorOf([deployAgentLabel: 'laptop']).contains('cannot choose where deploys run')
        assert shCalls.isEmpty()
    }

    // ---- job properties ------------------------------------------------------------------------

    @Test
    void 'the build keeps 30 builds and the artifacts of 10, and its log is timestamped'() {
        runScripted('mlciPipeline')

        assert jobProperties*.name == ['buildDiscarder']
        assert jobProperties[0].strategy == [name: 'logRotator', numToKeepStr: '30', artifactNumToKeepStr: '10']
        assert events.indexOf('timestamps') < events.indexOf('stage:Setup')
    }

    @Test
    void 'a pull request or a branch that does not deploy aborts its older running build'() {
        envVars.BRANCH_NAME = 'PR-9'
        envVars.CHANGE_ID = '9'

        runScripted('mlciPipeline', [buildsToKeep: 5])

        assert jobProperties*.name == ['buildDiscarder', 'disableConcurrentBuilds']
        assert jobProperties[1].abortPrevious == true
        assert jobProperties[0].strategy.numToKeepStr == '5'
    }
}
