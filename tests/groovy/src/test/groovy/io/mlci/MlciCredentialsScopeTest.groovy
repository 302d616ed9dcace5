package io.mlci

import org.junit.Before
import org.junit.Test

/** Which credentials each step's command sees: MLflow only where MLflow is used, registry only in mlciBuild. */
class MlciCredentialsScopeTest extends LibraryTestBase {

    @Before
    void givenCredentialsAndReports() {
        envVars.MLCI_MLFLOW_CREDENTIALS_ID = 'mlflow-ci'
        envVars.MLCI_REGISTRY_CREDENTIALS_ID = 'registry-ci'
        envVars.MLCI_PIP_INDEX_URL = 'https://pypi.example.com/simple' // mlciTest's private venv installs from it
        givenAllReports()
    }

    void runEveryStep() {
        step('mlciTest')
        step('mlciTrain')
        step('mlciGate')
        step('mlciBuild')
        step('mlciDeploy', [env: 'staging'])
        step('mlciRollback', [env: 'production'])
    }

    Map<String, Set<String>> secretsSeen() {
        return mlciCalls().collectEntries { ShCall call ->
            [call.command, call.env.findAll { k, v -> k.endsWith('_PASSWORD') }.keySet()]
        }
    }

    @Test
    void 'each command sees only the credentials it needs'() {
        runEveryStep()

        assert secretsSeen() == [
            test: [] as Set,
            train: ['MLFLOW_TRACKING_PASSWORD'] as Set,
            gate: ['MLFLOW_TRACKING_PASSWORD'] as Set,
            build: ['MLFLOW_TRACKING_PASSWORD', 'MLCI_REGISTRY_PASSWORD'] as Set,
            deploy: ['MLFLOW_TRACKING_PASSWORD'] as Set,
            rollback: ['MLFLOW_TRACKING_PASSWORD'] as Set,
        ]
    }

    @Test
    void 'a pull request from a fork gets no MLflow credentials in any step, each step saying so once'() {
        envVars.CHANGE_ID = '17'
        envVars.CHANGE_FORK = 'mallory'

        runEveryStep()

        assert secretsSeen().values().every { !it.contains('MLFLOW_TRACKING_PASSWORD') }
        assert log.findAll { it.contains('MLflow credentials withheld') }.size() == 5
    }
}
