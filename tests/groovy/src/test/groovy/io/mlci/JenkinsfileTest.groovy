package io.mlci

import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException
import org.jenkinsci.plugins.workflow.support.steps.input.Rejection
import hudson.model.Result
import org.junit.Before
import org.junit.Test

/**
 * The root Jenkinsfile, run through DeclarativeRun against the real library steps, on a fake
 * controller where every stage agent is a new workspace (PipelineTestBase).
 */
class JenkinsfileTest extends PipelineTestBase {

    /** The canonical stage names (`mlci pipeline stages`), in order. */
    static final List<String> STAGES = ['Setup', 'Test', 'Train', 'Gate', 'Build images', 'Deploy staging',
                                        'Approve', 'Deploy production']

    @Before
    void givenReports() {
        givenAllReports()
        givenFile('mlci.yaml', 'project: iris\n')
        envVars.JOB_NAME = 'ml/mlci/main'
    }

    List<String> leafStages(DeclarativeRun run) {
        return run.allStages().findAll { it.nested == null }*.name
    }

    // ---- structure ---------------------------------------------------------------------------

    @Test
    void 'declares the canonical stages in order and loads the library from the same branch'() {
        envVars.BRANCH_NAME = 'feature/x'

        DeclarativeRun run = runJenkinsfile()

        assert leafStages(run) == STAGES
        assert events[0] == 'library:mlci@feature/x'
    }

    @Test
    void 'takes no agent for the whole build, allows concurrent builds and has no overall timeout'() {
        DeclarativeRun run = runJenkinsfile()

        assert run.agent == 'none'
        assert !run.options*.name.contains('disableConcurrentBuilds')
        assert !run.options*.name.contains('timeout')
        assert run.options*.name.containsAll(['timestamps', 'buildDiscarder'])
    }

    @Test
    void 'every stage that needs a workspace has an agent of the configured label, the approval has none'() {
        DeclarativeRun run = runJenkinsfile()

        for (StageRun stage : run.allStages().findAll { it.nested == null }) {
            List<StageRun> chain = []
            for (StageRun s = stage; s != null; s = s.parent) {
                chain << s
            }
            List agents = chain*.agentValue().findAll { it != 'none' }
            if (stage.name == 'Approve') {
                assert agents.isEmpty(): 'the approval must take no agent'
            } else {
                assert agents == ['docker && python3.11']: "stage ${stage.name} runs on ${agents}"
            }
        }
        assert events.findAll { it.startsWith('node:') }.unique() == ['node:docker && python3.11']
    }

    @Test
    void 'whoever starts a build cannot choose the agents of main credentialed stages'() {
        // Not a build parameter: one with Build permission could send main's stages to the built-in node.
        params.MLCI_AGENT_LABEL = 'built-in'

        DeclarativeRun run = runJenkinsfile()

        assert !run.parameterDefaults.containsKey('MLCI_AGENT_LABEL')
        assert events.findAll { it.startsWith('node:') }.unique() == ['node:docker && python3.11']
    }

    @Test
    void 'the wait for the first agent counts against a timeout'() {
        DeclarativeRun run = runJenkinsfile()

        Map candidate = run.stage('Candidate').options.find { it.name == 'timeout' }?.args?.getAt(0) as Map
        assert candidate == [time: 125, unit: 'MINUTES']
        // Stage options wrap the agent: the timeout starts before the node is asked for.
        assert events.indexOf('timeout:125 MINUTES') < events.indexOf('node:docker && python3.11')
    }

    @Test
    void 'the approval timeout falls back to its default when the parameter is empty'() {
        params.MLCI_APPROVAL_HOURS = ''

        runJenkinsfile()

        assert timeouts.find { it.unit == 'HOURS' }.time == 24
    }

    @Test
    void 'no typed local variables at the top level, which script splitting breaks'() {
        List<String> beforePipeline = new File(ROOT, 'Jenkinsfile').readLines().takeWhile { !it.startsWith('pipeline {') }
        List<String> locals = beforePipeline.findAll { it ==~ /^(def|Map|List|String|boolean|int|Object)\s+\w+\s*=.*/ }
        assert locals.isEmpty(): "use @groovy.transform.Field for ${locals}"
    }

    @Test
    void 'every stage but the approval has its own timeout in minutes, the approval waits the configured hours'() {
        params.MLCI_APPROVAL_HOURS = '8'

        DeclarativeRun run = runJenkinsfile()

        for (String name : STAGES - 'Approve') {
            Map timeout = run.stage(name).options.find { it.name == 'timeout' }?.args?.getAt(0) as Map
            assert timeout != null && timeout.unit == 'MINUTES' && (timeout.time as int) <= 60: "stage ${name}: ${timeout}"
        }
        assert timeouts.findAll { it.unit == 'HOURS' } == [[time: 8, unit: 'HOURS']]
        assert inputs.size() == 1
    }

    // ---- branches and pull requests ----------------------------------------------------------

    @Test
    void 'a feature branch stops after Gate, takes no lock, asks nothing and publishes the comparison'() {
        envVars.BRANCH_NAME = 'feature/better-model'

        DeclarativeRun run = runJenkinsfile()

        assert run.ran == ['Candidate', 'Setup', 'Test', 'Train', 'Gate']
        assert run.skipped == ['Build images', 'Staging', 'Deploy staging', 'Approve', 'Production', 'Deploy production']
        assert mlciCommandOrder() == ['test', 'train', 'gate']
        assert inputs.isEmpty() && lockCalls.isEmpty()
        assert events.count('node:docker && python3.11') == 1: 'skipped stages take no agent (beforeAgent)'
        assert build.result == 'SUCCESS'
        assert build.description.contains('Gate PASSED')
        assert !build.description.contains('\n'): 'the description is one line'
        assert events.contains('archive:reports/**')
    }

    @Test
    void 'a pull request into main deploys nothing'() {
        envVars.BRANCH_NAME = 'PR-12'
        envVars.CHANGE_ID = '12'
        envVars.CHANGE_TARGET = 'main'

        DeclarativeRun run = runJenkinsfile()

        assert run.ran == ['Candidate', 'Setup', 'Test', 'Train', 'Gate']
        assert !mlciCalls('deploy') && !mlciCalls('build') && inputs.isEmpty()
    }

    @Test
    void 'a failed gate on a pull request leaves it UNSTABLE with the comparison, and builds and deploys nothing'() {
        envVars.BRANCH_NAME = 'PR-12'
        envVars.CHANGE_ID = '12'
        givenFile('reports/gate.json', gateReport(passed: false, reasons: ['accuracy 0.90 < 0.95']))
        exitCode('gate', 1)

        DeclarativeRun run = runJenkinsfile()

        assert build.result == 'UNSTABLE'
        assert run.ran == ['Candidate', 'Setup', 'Test', 'Train', 'Gate']
        assert !mlciCalls('build') && !mlciCalls('deploy') && inputs.isEmpty()
        assert build.description.contains('Gate FAILED')
    }

    @Test
    void 'a pull request from a branch named main deploys nothing either'() {
        envVars.BRANCH_NAME = 'main'
        envVars.CHANGE_ID = '13'

        runJenkinsfile()

        assert !mlciCalls('deploy') && inputs.isEmpty()
    }

    @Test
    void 'a pull request from a fork loads the configured library and runs Test only, with no credential'() {
        envVars.BRANCH_NAME = 'PR-14'
        envVars.CHANGE_ID = '14'
        envVars.CHANGE_FORK = 'someone'
        envVars.MLCI_MLFLOW_CREDENTIALS_ID = 'mlflow-team'

        DeclarativeRun run = runJenkinsfile()

        assert events[0] == 'library:mlci'
        assert run.ran == ['Candidate', 'Setup', 'Test']
        assert run.skipped.containsAll(['Train', 'Gate'])
        assert mlciCommandOrder() == ['test']
        assert !events.any { it.startsWith('withCredentials') }
        assert build.result == 'SUCCESS'
    }

    @Test
    void 'a team that trusts forks lets their pull requests train and gate'() {
        envVars.BRANCH_NAME = 'PR-14'
        envVars.CHANGE_ID = '14'
        envVars.CHANGE_FORK = 'someone'
        String jenkinsfile = new File(ROOT, 'Jenkinsfile').text
        String trusting = "MLCI_TRUST_FORK_PULL_REQUESTS = 'true'"
        assert jenkinsfile.contains("MLCI_TRUST_FORK_PULL_REQUESTS = 'false'")

        DeclarativeRun run = runJenkinsfileText(jenkinsfile.replace("MLCI_TRUST_FORK_PULL_REQUESTS = 'false'", trusting))

        assert run.ran == ['Candidate', 'Setup', 'Test', 'Train', 'Gate']
        assert mlciCommandOrder() == ['test', 'train', 'gate']
    }

    // ---- main: staging, approval, production -------------------------------------------------

    @Test
    void 'main deploys staging, asks outside any node under the staging lock, then deploys production under its lock'() {
        DeclarativeRun run = runJenkinsfile()

        assert run.ran == ['Candidate'] + STAGES[0..3] + ['Build images', 'Staging', 'Deploy staging', 'Approve',
                                                          'Production', 'Deploy production']
        assert mlciCommandOrder() == ['test', 'train', 'gate', 'build', 'deploy', 'deploy']
        List<ShCall> deploys = mlciCalls('deploy')
        assert deploys*.env*.MLCI_ENV == ['staging', 'production']
        assert deploys*.env*.MLCI_VERSION == ['3', '3']
        assert onlyMlciCall('build').env.MLCI_VERSION == '3'
        // The staging lock spans Deploy staging and Approve; newest waiting build first.
        int stagingLock = events.indexOf('lock:mlci/ml/iris/staging')
        int stagingUnlock = events.indexOf('unlock:mlci/ml/iris/staging')
        assert stagingLock < events.indexOf('sh:deploy') && events.indexOf('input') < stagingUnlock
        assert events.indexOf('milestone:30:Approved') < stagingUnlock
        assert lockCalls.find { it.resource == 'mlci/ml/iris/staging' }.inversePrecedence == true
        assert deploys[0].locks == ['mlci/ml/iris/staging'] as Set
        // Production: its own lock, taken after the staging lock is released.
        assert deploys[1].locks == ['mlci/ml/iris/production'] as Set
        assert stagingUnlock < events.indexOf('lock:mlci/ml/iris/production')
        assert deploys[1].env.MLCI_APPROVER == 'alice'
        assert inputs[0].submitter == 'mlci-approvers'
        assert build.result == 'SUCCESS'
        assert build.description.contains('production: v3 (green), approved by alice')
        assert !build.description.contains('\n')
    }

    @Test
    void 'no executor is held while the approval waits'() {
        runJenkinsfile()

        assert nodesAtInput == [[]]
        assert violations.isEmpty()
    }

    @Test
    void 'reports cross agents by stash: each stage gets a fresh workspace and only this build\'s reports'() {
        runJenkinsfile()

        assert workspaces == 4: 'Candidate, Build images, Deploy staging, Deploy production'
        assert events.contains('stash:mlci-candidate:reports/gate-table.txt,reports/gate.json,reports/train.json')
        assert events.contains('stash:mlci-images:reports/build.json')
        assert events.count('unstash:mlci-candidate') == 3
        assert events.count('unstash:mlci-images') == 2
        // Each fresh workspace is set up before the reports come back (mlciSetup empties reports/).
        List<String> afterBuildNode = events.subList(events.indexOf('stage:Build images'), events.size())
        assert afterBuildNode.indexOf('sh:mlci setup') < afterBuildNode.indexOf('unstash:mlci-candidate')
    }

    @Test
    void 'milestones increase through the build and sit where an overtaken build must stop'() {
        runJenkinsfile()

        assert milestones == milestones.sort(false) && milestones.unique(false) == milestones
        List<String> order = events.findAll { it.startsWith('milestone:') || it in ['sh:build', 'input'] ||
            it.startsWith('lock:') }
        assert order.indexOf('milestone:10:Build images') < order.indexOf('sh:build')
        assert order.indexOf('lock:mlci/ml/iris/staging') < order.indexOf('milestone:20:Deploy staging')
        assert order.indexOf('lock:mlci/ml/iris/production') < order.indexOf('milestone:40:Deploy production')
    }

    @Test
    void 'first build: nothing in production yet (gate report "production": null) deploys all the way'() {
        givenFile('reports/gate.json', gateReport(production: null,
            table: 'metric    candidate v3\naccuracy  0.970'))

        runJenkinsfile()

        assert build.result == 'SUCCESS'
        assert mlciCalls('deploy')*.env*.MLCI_ENV == ['staging', 'production']
        assert inputs[0].message.contains('nothing in production')
    }

    @Test
    void 'a user aborting the approval ends the build ABORTED with nothing deployed to production'() {
        inputAnswer = { Map args -> throw new FlowInterruptedException(Result.ABORTED, new Rejection('bob')) }

        DeclarativeRun run = runJenkinsfile()

        assert build.result == 'ABORTED'
        assert mlciCalls('deploy')*.env*.MLCI_ENV == ['staging']
        assert run.skipped == ['Production', 'Deploy production']
        assert !events.contains('lock:mlci/ml/iris/production')
        assert events.contains('unlock:mlci/ml/iris/staging')
        assert !milestones.contains(30)
        assert log.any { it.contains('Build aborted (last stage entered: Approve) before mlci deploy touched production: ' +
            'nothing was deployed') }
    }

    @Test
    void 'an abort during Deploy production does not claim nothing was deployed and says how to check'() {
        onCommand['deploy'] = { ShCall call ->
            if (call.env.MLCI_ENV == 'production') {
                throw new FlowInterruptedException(Result.ABORTED, new jenkins.model.CauseOfInterruption.UserInterruption('carol'))
            }
        }

        runJenkinsfile()

        assert build.result == 'ABORTED'
        assert !log.any { it.contains('nothing was deployed to production') }
        assert log.any { it.contains('Build aborted during Deploy production') && it.contains('mlci status --env production') }
    }

    @Test
    void 'failing tests fail the build without talking about production'() {
        exitCode('test', 1)

        runJenkinsfile()

        assert build.result == 'FAILURE'
        assert log.any { it.contains('Build failed (last stage entered: Test)') && it.contains('Production was not touched') }
        assert !log.any { it.contains('rolled back') || it.contains('switched back') }
    }

    @Test
    void 'an approval timeout ends the build ABORTED with nothing deployed to production'() {
        expireTimeouts = true

        runJenkinsfile()

        assert events.contains('timeout-expired:24 HOURS')
        assert build.result == 'ABORTED'
        // The input step reports its timeout as "Rejected by SYSTEM": the log must still say timed out.
        assert log.any { it.contains('was not approved: approval timed out (no answer within 24 h)') }
        assert mlciCalls('deploy')*.env*.MLCI_ENV == ['staging']
    }

    @Test
    void 'an older build overtaken at the staging lock ends NOT_BUILT, deploys nothing and says what to do'() {
        String staging = 'mlci/ml/iris/staging'
        givenNewerBuildTakesTheStagingLockFirst(staging)

        DeclarativeRun run = runJenkinsfile()

        assert controller.events.contains('cancelled:ml/mlci/main#7:Superseded by #8')
        assert build.result == 'NOT_BUILT'
        assert !mlciCalls('deploy') && inputs.isEmpty()
        // Interrupted while its stage waits for the lock: the nested stages never start, the later ones are skipped.
        assert !events.contains('stage:Deploy staging') && !events.contains('stage:Approve')
        assert run.skipped == ['Production', 'Deploy production']
        assert events.contains("lock-wait:${staging}".toString()) && !events.contains("lock:${staging}".toString())
        assert log.any { it.startsWith('Build superseded by a newer build of this branch (last stage entered: Build images)') }
    }

    @Test
    void 'an approved build that a newer one overtook between the staging and production locks never deploys over it'() {
        // The race milestone 40 (inside the production lock) is for: as this build (#7) leaves the
        // staging lock, #8 takes it, is deployed to staging, approved, and queues at production
        // before #7 asks for it; #5 holds production meanwhile. FIFO gives #8 the lock first, and
        // #8's milestone 40 (the same Jenkinsfile) cancels #7 while it waits: #7 never deploys.
        String staging = 'mlci/ml/iris/staging'
        String production = 'mlci/ml/iris/production'
        Controller.Build deploying = otherBuild(5)
        controller.pass(deploying, 40)
        controller.acquire(deploying, production, false)
        Controller.Build newer = otherBuild(8)
        duringApproval { ->
            controller.pass(newer, 10)
            controller.acquire(newer, staging, true)
        }
        controller.afterRelease[staging] = [{ ->
            controller.pass(newer, 20)
            controller.pass(newer, 30)
            controller.release(newer, staging)
            controller.acquire(newer, production, false)
        }]
        meanwhile { -> controller.complete(deploying, 'SUCCESS') }
        meanwhile { -> controller.pass(newer, 40) }

        runJenkinsfile()

        assert controller.events.contains('cancelled:ml/mlci/main#7:Superseded by #8')
        assert build.result == 'NOT_BUILT'
        assert mlciCalls('deploy')*.env*.MLCI_ENV == ['staging']
        assert events.contains("lock-wait:${production}".toString()) && !events.contains("lock:${production}".toString())
        assert log.any { it.startsWith('Build superseded by a newer build of this branch (last stage entered: Approve)') }
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
        assert run.failure.message.contains('Nothing is left to undo')
        assert log.any { it.contains('Build failed in Deploy production') && it.contains('switched back by mlci deploy') }
        assert events.contains('unlock:mlci/ml/iris/production')
        assert events.findAll { it.startsWith('archive:reports/**') }.size() == 4
    }

    @Test
    void 'a failed gate on main stops before building images'() {
        givenFile('reports/gate.json', gateReport(passed: false, reasons: ['worse than production']))
        exitCode('gate', 1)

        DeclarativeRun run = runJenkinsfile()

        assert run.ran == ['Candidate', 'Setup', 'Test', 'Train', 'Gate']
        assert !mlciCalls('build')
        assert build.result == 'FAILURE'
        assert build.description.contains('Gate FAILED')
    }

    @Test
    void 'the deploy branch is the environment value MLCI_DEPLOY_BRANCH'() {
        String jenkinsfile = new File(ROOT, 'Jenkinsfile').text
        assert jenkinsfile.contains("MLCI_DEPLOY_BRANCH = 'main'")

        DeclarativeRun run = runJenkinsfileText(jenkinsfile.replace("MLCI_DEPLOY_BRANCH = 'main'",
            "MLCI_DEPLOY_BRANCH = 'release'"))

        assert run.ran == ['Candidate', 'Setup', 'Test', 'Train', 'Gate']
    }

    /** Runs a variant of a Jenkinsfile, written to a temporary file. */
    DeclarativeRun runJenkinsfileText(String text) {
        File copy = File.createTempFile('Jenkinsfile', '.groovy')
        copy.deleteOnExit()
        copy.text = text
        return runJenkinsfile(copy.absolutePath)
    }

    // ---- shadow report in the approval -----------------------------------------------------

    @Test
    void 'with shadow traffic configured the approver sees the summary and may refresh it, no node during input'() {
        givenFile('mlci.yaml', 'project: mlci\nmodel:\n  name: iris\nenvironments:\n  production:\n' +
            '    shadow: {env: staging, share: 0.1}\n')
        int fetched = 0
        onCommand['shadow'] = { ShCall call ->
            fetched++
            givenFile('reports/shadow-staging.json', """{"env": "staging", "candidate_version": "3",
                "comparison": {"mirrored": ${fetched * 10}},
                "summary": "shadow production -> staging: ${fetched * 10} requests compared"}""".toString())
        }
        List<String> actions = ['Refresh the shadow report', 'Deploy to production']
        inputAnswer = { Map args -> [MLCI_ACTION: actions.remove(0), APPROVER: 'alice'] }

        runJenkinsfile()

        assert inputs.size() == 2
        assert inputs[0].message.endsWith('Shadow: shadow production -> staging: 10 requests compared')
        assert inputs[1].message.endsWith('Shadow: shadow production -> staging: 20 requests compared')
        assert nodesAtInput == [[], []]
        assert mlciCalls('shadow')*.env*.MLCI_SHADOW_ENV == ['staging', 'staging']
        assert mlciCalls('deploy')*.env*.MLCI_ENV == ['staging', 'production']
        assert mlciCalls('deploy')[1].env.MLCI_APPROVER == 'alice'
    }

    @Test
    void 'without shadow traffic configured the approval takes no node and offers no refresh'() {
        runJenkinsfile()

        assert !mlciCalls('shadow')
        assert inputs.size() == 1 && inputs[0].parameters == null
    }
}
