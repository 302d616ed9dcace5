package io.mlci

import org.junit.Test

class MlciDeployTest extends LibraryTestBase {

    @Test
    void 'an environment on another host pulls with the pull credential, in a Docker config of this build'() {
        givenFile('reports/deploy-production.json', deployReport('production'))
        envVars.MLCI_REGISTRY_CREDENTIALS_ID = 'registry-push'
        envVars.MLCI_REGISTRY_PULL_CREDENTIALS_ID = 'registry-pull'

        step('mlciDeploy', [env: 'production', version: '3'])

        ShCall call = onlyMlciCall('deploy')
        assert call.env.MLCI_REGISTRY_USERNAME == 'user-of-registry-pull'
        assert call.env.MLCI_REGISTRY_PASSWORD == 'secret-of-registry-pull'
        assert call.env.DOCKER_CONFIG == '/ws@tmp/mlci-docker-config'
        ShCall cleanup = shCalls.last()
        assert cleanup.label == "mlci deploy: docker logout and remove the build's Docker config"
        assert cleanup.script.contains('rm -rf "$DOCKER_CONFIG"')
        assert !cleanup.env.containsKey('MLCI_REGISTRY_PASSWORD')
    }

    @Test
    void 'without a pull credential a deploy logs in nowhere, even when a push credential is configured'() {
        givenFile('reports/deploy-staging.json', deployReport('staging'))
        envVars.MLCI_REGISTRY_CREDENTIALS_ID = 'registry-push'

        // mlciPipeline hands its whole config to mlciDeploy: its push credential must not log in here.
        step('mlciDeploy', [env: 'staging', registryCredentialsId: 'registry-push'])

        ShCall call = onlyMlciCall('deploy')
        assert !call.env.containsKey('MLCI_REGISTRY_PASSWORD') && !call.env.containsKey('DOCKER_CONFIG')
        assert shCalls.size() == 1
    }

    @Test
    void 'deploys to the environment under its lock and returns the deploy report'() {
        givenFile('reports/deploy-staging.json', deployReport('staging'))

        Map report = step('mlciDeploy', [env: 'staging']) as Map

        ShCall call = onlyMlciCall('deploy')
        assert call.script.contains('set -- --env "$MLCI_ENV"')
        assert call.script.contains('"$MLCI_BIN" deploy "$@"')
        assert call.env.MLCI_ENV == 'staging'
        assert call.env.MLCI_VERSION == ''
        assert call.locks == ['mlci/ml/mlci/staging'] as Set
        assert events.indexOf('lock:mlci/ml/mlci/staging') < events.indexOf('sh:deploy')
        assert events.indexOf('unlock:mlci/ml/mlci/staging') > events.indexOf('sh:deploy')
        assert report.current.colour == 'green'
        assert log.any { it.contains('staging now serves model v3 from the green slot at http://localhost:8200') }
    }

    @Test
    void 'version, image and approver reach mlci through the environment'() {
        givenFile('reports/deploy-production.json', deployReport('production'))

        step('mlciDeploy', [env: 'production', version: '3', approver: 'alice'])

        ShCall call = onlyMlciCall('deploy')
        assert call.env.MLCI_ENV == 'production'
        assert call.env.MLCI_VERSION == '3'
        assert call.env.MLCI_APPROVER == 'alice'
        assert call.env.BUILD_URL == envVars.BUILD_URL
        assert call.script.contains('--version "$MLCI_VERSION"')
        assert call.script.contains('--image "$MLCI_IMAGE"')
    }

    @Test
    void 'the approver defaults to env MLCI_APPROVER and the lock to the project of mlci yaml'() {
        envVars.MLCI_APPROVER = 'bob'
        envVars.MLCI_PROJECT = 'not-this'
        givenFile('mlci.yaml', 'project: churn\n')
        givenFile('reports/deploy-production.json', deployReport('production'))

        step('mlciDeploy', [env: 'production'])

        ShCall call = onlyMlciCall('deploy')
        assert call.env.MLCI_APPROVER == 'bob'
        assert call.locks == ['mlci/ml/churn/production'] as Set
    }

    @Test
    void 'a project parameter overrides mlci yaml for the lock'() {
        givenFile('reports/deploy-staging.json', deployReport('staging'))

        step('mlciDeploy', [env: 'staging', project: 'fraud'])

        assert onlyMlciCall('deploy').locks == ['mlci/ml/fraud/staging'] as Set
    }

    @Test
    void 'a first deploy report with null fields is read without error (json-lib JSONNull)'() {
        givenFile('reports/deploy-staging.json',
            '{"env": "staging", "current": {"colour": "blue", "model_version": "1", "url": "http://x", ' +
            '"approver": null, "image": null}, "previous": null, "records": []}')

        Map report = step('mlciDeploy', [env: 'staging']) as Map

        assert report.current.approver == null
        assert report.previous == null
        assert jsonReads.every { it.returnPojo == true }
    }

    @Test
    void 'force and reason reach mlci deploy --force --reason through the environment'() {
        givenFile('reports/deploy-production.json', deployReport('production'))

        step('mlciDeploy', [env: 'production', version: '3', force: true, reason: 'hotfix; approved by CTO'])

        ShCall call = onlyMlciCall('deploy')
        assert call.env.MLCI_FORCE == 'true'
        assert call.env.MLCI_REASON == 'hotfix; approved by CTO'
        assert call.script.contains('if [ "$MLCI_FORCE" = true ]; then set -- "$@" --force --reason "$MLCI_REASON"; fi')
        assert !call.script.contains('hotfix')
    }

    @Test
    void 'without force no override is asked for'() {
        givenFile('reports/deploy-production.json', deployReport('production'))

        step('mlciDeploy', [env: 'production', reason: 'ignored'])

        assert onlyMlciCall('deploy').env.MLCI_FORCE == 'false'
    }

    @Test
    void 'force without a reason is refused before anything runs'() {
        assert stepError('mlciDeploy', [env: 'production', force: true]).contains('force needs a reason')
        assert shCalls.isEmpty()
        assert !events.any { it.startsWith('lock:') }
    }

    @Test
    void 'deploy binds the MLflow credentials but never the registry credentials'() {
        envVars.MLCI_REGISTRY_CREDENTIALS_ID = 'registry-ci'
        givenFile('reports/deploy-staging.json', deployReport('staging'))

        step('mlciDeploy', [env: 'staging', mlflowCredentialsId: 'mlflow-ci'])

        ShCall call = onlyMlciCall('deploy')
        assert call.env.MLFLOW_TRACKING_USERNAME == 'user-of-mlflow-ci'
        assert !call.env.containsKey('MLCI_REGISTRY_PASSWORD')
    }

    @Test
    void 'lock false leaves the lock to the caller'() {
        givenFile('reports/deploy-production.json', deployReport('production'))

        step('mlciDeploy', [env: 'production', lock: false])

        assert onlyMlciCall('deploy').locks.isEmpty()
        assert !events.any { it.startsWith('lock:') }
    }

    @Test
    void 'exit 1 says the environment is as before, names its live colour, and marks the description'() {
        givenFile('reports/deploy-production.json', deployReport('production', [colour: 'blue', model_version: '2']))
        exitCode('deploy', 1)

        String message = stepError('mlciDeploy', [env: 'production'])

        assert message.startsWith('mlci deploy --env production said no (exit 1)')
        assert message.contains('live: blue, model v2')
        assert message.contains('reports/deploy-production.json')
        assert build.description.contains('production: deploy refused or rolled back')
        assert !build.description.contains('\n')
        assert events.contains('unlock:mlci/ml/mlci/production')
    }

    @Test
    void 'exit 1 says what mlci recorded for this deploy, from the report'() {
        Map report = deployReport('production', [colour: 'blue', model_version: '2'])
        report.last = [result: 'rolled back', reason: 'smoke test failed: 2 of 5 reference rows differ',
                       colour: 'green', model_version: '3']
        givenFile('reports/deploy-production.json', report)
        exitCode('deploy', 1)

        String message = stepError('mlciDeploy', [env: 'production'])

        assert message.startsWith('mlci deploy --env production said no (exit 1): rolled back: smoke test failed: ' +
            '2 of 5 reference rows differ. Live traffic is as before (live: blue, model v2).')
        assert !message.contains('policy refused')
    }

    @Test
    void 'env is required'() {
        assert stepError('mlciDeploy').startsWith("mlciDeploy: missing required parameter 'env'")
        assert shCalls.isEmpty()
    }

    @Test
    void 'version and image together are refused'() {
        assert stepError('mlciDeploy', [env: 'staging', version: '3', image: 'x:1']).contains('either version or image')
    }

    @Test
    void 'exit 2 and 3 say what to fix'() {
        exitCode('deploy', 2)
        assert stepError('mlciDeploy', [env: 'qa']).startsWith('mlci deploy --env qa rejected its input (exit 2)')
        exitCode('deploy', 3)
        String unreachable = stepError('mlciDeploy', [env: 'qa'])
        // An environment on an ssh:// host is not "the Docker engine on this agent": the message names both.
        assert unreachable.contains('its message above names which')
        assert unreachable.contains("an environment's docker_host (an ssh:// host: its SSH server")
    }
}
