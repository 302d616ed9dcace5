package io.mlci

import static com.lesfurets.jenkins.unit.global.lib.LibraryConfiguration.library
import static com.lesfurets.jenkins.unit.global.lib.LocalSource.localSource

import hudson.model.Result
import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException
import org.jenkinsci.plugins.workflow.support.steps.input.Rejection
import org.junit.Before
import org.junit.Test

/**
 * The example consumer repository (examples/churn-team): its one-line Jenkinsfile run through the
 * harness with the library's steps, its own mlci.yaml, on a fake controller (a fresh workspace
 * per node, the approval on no node).
 */
class ExampleJenkinsfileTest extends PipelineTestBase {

    static final String EXAMPLE = 'examples/churn-team'
    static final String VERSION = new File(ROOT, 'resources/io/mlci/VERSION').text.trim()

    String project

    @Before
    void givenTheConsumerRepository() {
        File dir = new File(ROOT, EXAMPLE)
        assert dir.isDirectory(): "${EXAMPLE} is missing"
        // The checkout: the example's own files (its mlci.yaml names the project of the lock names).
        String yaml = new File(dir, 'mlci.yaml').text
        givenFile('mlci.yaml', yaml)
        project = readYaml(text: yaml).project
        givenAllReports()
        envVars.JOB_NAME = 'teams/churn-team/main'
        // The one-line Jenkinsfile passes nothing: the administrator sets the index (a global property).
        envVars.MLCI_PIP_INDEX_URL = 'https://pypi.example.com/simple'
        // @Library('mlci@vX') resolves to the Global (untrusted) Pipeline Library at that tag; here an
        // empty retrieval: the library's steps are the ones under test (vars/ of this repository).
        File libraries = File.createTempDir()
        new File(libraries, "mlci@v${VERSION}").mkdirs()
        helper.registerSharedLibrary(library().name('mlci').defaultVersion("v${VERSION}")
            .allowOverride(false).implicit(false).targetPath(libraries.path)
            .retriever(localSource(libraries.path)).build())
    }

    Object runExample() {
        return runScriptedJenkinsfile("${EXAMPLE}/Jenkinsfile")
    }

    @Test
    void 'the Jenkinsfile is one line: the library pinned to this release, then mlciPipeline'() {
        List<String> lines = new File(ROOT, "${EXAMPLE}/Jenkinsfile").readLines()*.trim().findAll { it && !it.startsWith('//') }
        assert lines == ["@Library('mlci@v${VERSION}') _".toString(), 'mlciPipeline()']
    }

    @Test
    void 'the repository holds no mlci source: only its config, data, tests and the Jenkinsfile'() {
        File dir = new File(ROOT, EXAMPLE)
        assert !new File(dir, 'vars').exists() && !new File(dir, 'ml').exists() && !new File(dir, 'setup.cfg').exists()
        assert new File(dir, 'mlci.yaml').isFile() && new File(dir, 'tests').isDirectory()
    }

    @Test
    void 'on main it installs mlci from the index, deploys staging, asks on no node, then deploys production'() {
        runExample()

        assert events.findAll { it.startsWith('stage:') }.collect { it - 'stage:' } == JenkinsfileTest.STAGES
        assert mlciCommandOrder() == ['test', 'train', 'gate', 'build', 'deploy', 'deploy']
        assert shCalls.findAll { it.label == 'mlci setup' }*.env*.MLCI_SOURCE.unique() == ['index']
        assert shCalls.findAll { it.label == 'mlci setup' }*.env*.MLCI_VERSION.unique() == [VERSION]
        assert nodesAtInput == [[]]
        assert mlciCalls('deploy')*.locks == [["mlci/teams/${project}/staging".toString()] as Set,
                                              ["mlci/teams/${project}/production".toString()] as Set]
        assert mlciCalls('deploy')[1].env.MLCI_APPROVER == 'alice'
        assert build.result == null
    }

    @Test
    void 'a pull request stops after Gate'() {
        envVars.BRANCH_NAME = 'PR-3'
        envVars.CHANGE_ID = '3'

        runExample()

        assert mlciCommandOrder() == ['test', 'train', 'gate']
        assert inputs.isEmpty() && lockCalls.isEmpty()
    }

    @Test
    void 'an aborted approval ends the build ABORTED with nothing deployed to production'() {
        inputAnswer = { Map args -> throw new FlowInterruptedException(Result.ABORTED, new Rejection('bob')) }

        runExample()

        assert build.result == 'ABORTED'
        assert mlciCalls('deploy')*.env*.MLCI_ENV == ['staging']
    }
}
