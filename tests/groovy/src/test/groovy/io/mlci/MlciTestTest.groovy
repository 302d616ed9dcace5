package io.mlci

import org.junit.Before
import org.junit.Test

class MlciTestTest extends LibraryTestBase {

    @Before
    void givenTheTeamIndex() {
        // Where the private venv of the tests installs mlci from (mlciSetup refuses to guess pypi.org).
        envVars.MLCI_PIP_INDEX_URL = 'https://pypi.example.com/simple'
    }

    @Test
    void 'the tests run in a venv of their own, private to the build, never the cached one'() {
        step('mlciTest')

        ShCall setup = shCalls.find { it.label == 'mlci setup' }
        assert setup.env.MLCI_VENV == '.mlci/test-venv'
        assert setup.env.MLCI_VENV_REUSE == 'false'
        assert setup.env.MLCI_VENV_CACHE == '/ws@tmp/mlci-test-venvs'
        assert onlyMlciCall('test').env.MLCI_BIN == '.mlci/test-venv/bin/mlci'
        assert shCalls.indexOf(setup) < shCalls.indexOf(onlyMlciCall('test'))
        assert !events.contains('deleteDir:reports/'): 'the reports of this build stay'
    }

    @Test
    void 'the tests run sandboxed: auto unless the administrator chose, their private venv writable'() {
        step('mlciTest')
        assert onlyMlciCall('test').env.MLCI_TEST_SANDBOX == 'auto'
        assert onlyMlciCall('test').env.MLCI_TEST_WRITABLE == '/ws@tmp/mlci-test-venvs'

        shCalls.clear()
        envVars.MLCI_TEST_SANDBOX = 'required'
        step('mlciTest', [isolated: false])
        assert onlyMlciCall('test').env.MLCI_TEST_SANDBOX == 'required'
        assert onlyMlciCall('test').env.MLCI_TEST_WRITABLE == ''
    }

    @Test
    void 'a fork pull request tests in a venv apart from the private venv of its other stages'() {
        envVars.CHANGE_ID = '7'
        envVars.CHANGE_FORK = 'mallory'

        step('mlciSetup')
        step('mlciTest')

        assert shCalls.findAll { it.label == 'mlci setup' }*.env*.MLCI_VENV_CACHE ==
            ['/ws@tmp/mlci-private-venvs', '/ws@tmp/mlci-test-venvs']
    }

    @Test
    void 'isolated false runs the tests in the workspace venv'() {
        step('mlciTest', [isolated: false])

        assert !shCalls.any { it.label == 'mlci setup' }
        assert onlyMlciCall('test').env.MLCI_BIN == '.venv/bin/mlci'
    }

    @Test
    void 'runs mlci test then publishes JUnit and coverage'() {
        givenFile('reports/junit.xml', '<testsuite/>')
        givenFile('reports/coverage.xml', '<coverage/>')

        step('mlciTest')

        ShCall call = onlyMlciCall('test')
        assert call.script == '"$MLCI_BIN" test'
        int sh = events.indexOf('sh:test')
        assert events.indexOf('junit:reports/junit.xml') > sh
        assert events.indexOf('recordCoverage:reports/coverage.xml') > sh
        assert !events.contains('archive:reports/**')
    }

    @Test
    void 'failing tests are still published, then fail the build with a pointer to them'() {
        givenFile('reports/junit.xml', '<testsuite failures="1"/>')
        exitCode('test', 1)

        givenFile('reports/coverage.xml', '<coverage/>')
        String message = stepError('mlciTest')

        assert events.contains('junit:reports/junit.xml')
        assert events.contains('recordCoverage:reports/coverage.xml')
        assert coverages[0].enabledForFailure == true
        assert events.indexOf('recordCoverage:reports/coverage.xml') < events.findIndexOf { it.startsWith('error:') }
        assert message.contains('the test suite failed (exit 1)')
        assert message.contains('reports/junit.xml')
    }

    @Test
    void 'results are published even when mlci test cannot run'() {
        givenFile('reports/junit.xml', '<testsuite/>')
        exitCode('test', 2)

        assert stepError('mlciTest').contains('exit 2')
        assert events.contains('junit:reports/junit.xml')
    }

    @Test
    void 'publish false leaves publishing to the post section'() {
        givenFile('reports/junit.xml', '<testsuite/>')

        step('mlciTest', [publish: false])

        assert !events.any { it.startsWith('junit') }
    }

    @Test
    void 'without the coverage plugin the coverage file is archived instead'() {
        givenFile('reports/coverage.xml', '<coverage/>')
        helper.registerAllowedMethod('recordCoverage', [Map], { Map args ->
            throw new NoSuchMethodError("No such DSL method 'recordCoverage' found among steps")
        })

        step('mlciTest')

        assert events.contains('archive:reports/coverage.xml')
        assert log.any { it.contains('Coverage plugin is not installed') }
    }

    @Test
    void 'tests run without MLflow credentials (the code under test is the branch or pull request)'() {
        envVars.MLCI_MLFLOW_CREDENTIALS_ID = 'mlflow-ci'

        step('mlciTest', [mlflowCredentialsId: 'mlflow-ci'])

        assert !onlyMlciCall('test').env.containsKey('MLFLOW_TRACKING_PASSWORD')
        assert !events.any { it.startsWith('withCredentials') }
    }

    @Test
    void 'exit 3 points at the dependencies'() {
        exitCode('test', 3)

        assert stepError('mlciTest').contains('could not reach a dependency (exit 3)')
    }
}
