package io.mlci

import org.junit.Test

class MlciCommandTest extends LibraryTestBase {

    static final String STATUS = '"$MLCI_BIN" status --json'

    @Test
    void 'runs the given script once with MLCI_BIN and MLCI_CONFIG in its environment'() {
        int status = step('mlciCommand', [command: 'status', script: STATUS]) as int

        assert status == 0
        ShCall call = onlyMlciCall('status')
        assert call.script == STATUS
        assert call.label == 'mlci status'
        assert call.env.MLCI_BIN == '.venv/bin/mlci'
        assert call.env.MLCI_CONFIG == 'mlci.yaml'
        assert !call.env.containsKey('MLFLOW_TRACKING_URI')
        assert !events.any { it.startsWith('withCredentials') }
    }

    @Test
    void 'the config defaults to env MLCI_CONFIG, for example a build parameter'() {
        envVars.MLCI_CONFIG = 'configs/ci.yaml'

        step('mlciCommand', [command: 'status', script: STATUS])

        assert onlyMlciCall('status').env.MLCI_CONFIG == 'configs/ci.yaml'
    }

    @Test
    void 'extra vars, the tracking URI and the MLflow credentials reach the command through the environment'() {
        step('mlciCommand', [command: 'status', script: STATUS, vars: ['MLCI_ENV=staging'], mlflow: true,
                             mlflowTrackingUri: 'https://mlflow.example.com', mlflowCredentialsId: 'mlflow-ci'])

        ShCall call = onlyMlciCall('status')
        assert call.env.MLCI_ENV == 'staging'
        assert call.env.MLFLOW_TRACKING_URI == 'https://mlflow.example.com'
        assert call.env.MLFLOW_TRACKING_USERNAME == 'user-of-mlflow-ci'
        assert call.env.MLFLOW_TRACKING_PASSWORD == 'secret-of-mlflow-ci'
        assert events.indexOf('withCredentials:mlflow-ci') < events.indexOf('sh:status')
        assert !call.script.contains('secret')
        assert !log.any { it.contains('secret-of') }
    }

    @Test
    void 'the credential id and the tracking URI can come from the environment block of a Jenkinsfile'() {
        envVars.MLCI_MLFLOW_CREDENTIALS_ID = 'mlflow-env'
        envVars.MLCI_MLFLOW_TRACKING_URI = 'http://mlflow:5000'

        step('mlciCommand', [command: 'status', script: STATUS, mlflow: true])

        ShCall call = onlyMlciCall('status')
        assert call.env.MLFLOW_TRACKING_USERNAME == 'user-of-mlflow-env'
        assert call.env.MLFLOW_TRACKING_URI == 'http://mlflow:5000'
    }

    @Test
    void 'MLflow credentials are bound only for a command that talks to MLflow'() {
        envVars.MLCI_MLFLOW_CREDENTIALS_ID = 'mlflow-env'

        step('mlciCommand', [command: 'status', script: STATUS])

        assert !onlyMlciCall('status').env.containsKey('MLFLOW_TRACKING_PASSWORD')
        assert !events.any { it.startsWith('withCredentials') }
    }

    @Test
    void 'mlciCommand never binds registry credentials (only mlciBuild does)'() {
        envVars.MLCI_REGISTRY_CREDENTIALS_ID = 'registry-env'

        step('mlciCommand', [command: 'status', script: STATUS, mlflow: true, registry: true,
                             registryCredentialsId: 'registry'])

        assert !onlyMlciCall('status').env.containsKey('MLCI_REGISTRY_PASSWORD')
    }

    @Test
    void 'a pull request from a fork gets no MLflow credentials, and the log says so in one line'() {
        envVars.CHANGE_ID = '42'
        envVars.CHANGE_FORK = 'mallory/mlci'

        step('mlciCommand', [command: 'train', script: '"$MLCI_BIN" train', mlflow: true, mlflowCredentialsId: 'mlflow-ci'])

        ShCall call = onlyMlciCall('train')
        assert !call.env.containsKey('MLFLOW_TRACKING_USERNAME')
        assert !call.env.containsKey('MLFLOW_TRACKING_PASSWORD')
        assert !events.any { it.startsWith('withCredentials') }
        assert log.findAll { it.contains('MLflow credentials withheld') } ==
            ["mlci train: MLflow credentials withheld: this pull request comes from the fork 'mallory/mlci' " +
             '(set trustForkPullRequests: true to bind them).']
    }

    @Test
    void 'forks can be trusted by parameter or by env MLCI_TRUST_FORK_PULL_REQUESTS'() {
        envVars.CHANGE_FORK = 'colleague/mlci'

        step('mlciCommand', [command: 'train', script: '"$MLCI_BIN" train', mlflow: true, mlflowCredentialsId: 'mlflow-ci',
                             trustForkPullRequests: true])
        envVars.MLCI_TRUST_FORK_PULL_REQUESTS = 'true'
        step('mlciCommand', [command: 'gate', script: '"$MLCI_BIN" gate', mlflow: true, mlflowCredentialsId: 'mlflow-ci'])

        assert onlyMlciCall('train').env.MLFLOW_TRACKING_PASSWORD == 'secret-of-mlflow-ci'
        assert onlyMlciCall('gate').env.MLFLOW_TRACKING_PASSWORD == 'secret-of-mlflow-ci'
        assert !log.any { it.contains('withheld') }
    }

    @Test
    void 'a pull request from the same repository (no CHANGE_FORK) gets the credentials'() {
        envVars.CHANGE_ID = '42'
        envVars.CHANGE_FORK = ''

        step('mlciCommand', [command: 'gate', script: '"$MLCI_BIN" gate', mlflow: true, mlflowCredentialsId: 'mlflow-ci'])

        assert onlyMlciCall('gate').env.MLFLOW_TRACKING_PASSWORD == 'secret-of-mlflow-ci'
    }

    @Test
    void 'secrets are gone from the environment after the command'() {
        step('mlciCommand', [command: 'status', script: STATUS, mlflow: true, mlflowCredentialsId: 'mlflow-ci'])

        assert onlyMlciCall('status').env.MLFLOW_TRACKING_PASSWORD == 'secret-of-mlflow-ci'
        assert !envVars.containsKey('MLFLOW_TRACKING_PASSWORD')
        assert !envVars.containsKey('MLCI_BIN')
    }

    @Test
    void 'exit 1 is returned to the step, which explains which check said no'() {
        exitCode('status', 1)

        assert step('mlciCommand', [command: 'status', script: STATUS]) == 1
        assert !events.any { it.startsWith('error:') }
    }

    @Test
    void 'exit 2 fails the build and says to fix the config, the data or the parameters'() {
        exitCode('status', 2)

        String message = stepError('mlciCommand', [command: 'status', script: STATUS, config: 'ops.yaml'])

        assert message.startsWith('mlci status rejected its input (exit 2)')
        assert message.contains('fix ops.yaml, the data it names (a missing or invalid file, column or value) or ' +
            'the step parameters')
    }

    @Test
    void 'exit 3 fails the build and says what to check'() {
        exitCode('status', 3)

        String message = stepError('mlciCommand', [command: 'status', script: STATUS])

        assert message.startsWith('mlci status could not reach a dependency (exit 3)')
        assert message.contains('MLFLOW_TRACKING_URI')
        assert message.contains('docker info')
    }

    @Test
    void 'exit 127 says mlciSetup did not run'() {
        exitCode('status', 127)

        assert stepError('mlciCommand', [command: 'status', script: STATUS]).contains('Run mlciSetup first')
    }

    @Test
    void 'another exit status is reported as unexpected'() {
        exitCode('status', 137)

        assert stepError('mlciCommand', [command: 'status', script: STATUS]).contains('unexpected exit status 137')
    }

    @Test
    void 'a missing required key is named'() {
        assert stepError('mlciCommand', [command: 'status']) == "mlciCommand: missing required parameter 'script'"
        assert stepError('mlciCommand', [script: STATUS]) == "mlciCommand: missing required parameter 'command'"
        assert shCalls.isEmpty()
    }
}
