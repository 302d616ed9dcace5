package io.mlci

import org.junit.Test

class MlciDeployTest extends LibraryTestBase {

    @Test
    void 'deploys to the environment under its lock and returns the deploy report'() {
        givenFile('reports/deploy-staging.json', deployReport('staging'))

        Map report = step('mlciDeploy', [env: 'staging']) as Map

        ShCall call = onlyMlciCall('deploy')
        assert call.script.contains('set -- --env "$MLCI_ENV"')
        assert call.script.contains('"$MLCI_BIN" deploy "$@"')
        assert call.env.MLCI_ENV == 'staging'
        assert call.env.MLCI_VERSION == ''
        assert call.locks == ['mlci-ml-mlci-staging'] as Set
        assert events.indexOf('lock:mlci-ml-mlci-staging') < events.indexOf('sh:deploy')
        assert events.indexOf('unlock:mlci-ml-mlci-staging') > events.indexOf('sh:deploy')
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
    void 'the approver defaults to env MLCI_APPROVER and the lock to env MLCI_PROJECT'() {
        envVars.MLCI_APPROVER = 'bob'
        envVars.MLCI_PROJECT = 'churn'
        givenFile('reports/deploy-production.json', deployReport('production'))

        step('mlciDeploy', [env: 'production'])

        ShCall call = onlyMlciCall('deploy')
        assert call.env.MLCI_APPROVER == 'bob'
        assert call.locks == ['mlci-churn-production'] as Set
    }

    @Test
    void 'lock false leaves the lock to the caller'() {
        givenFile('reports/deploy-production.json', deployReport('production'))

        step('mlciDeploy', [env: 'production', lock: false])

        assert onlyMlciCall('deploy').locks.isEmpty()
        assert !events.any { it.startsWith('lock:') }
    }

    @Test
    void 'a failed verification says mlci already rolled back, and marks the description'() {
        givenFile('reports/deploy-production.json', deployReport('production', [colour: 'blue', model_version: '2']))
        exitCode('deploy', 1)

        String message = stepError('mlciDeploy', [env: 'production'])

        assert message.startsWith('Deploy to production failed verification (exit 1). mlci deploy has ALREADY ROLLED BACK')
        assert message.contains('(blue, model v2)')
        assert message.contains('reports/deploy-production.json')
        assert build.description.contains('production: deploy failed verification, rolled back')
        assert events.contains('unlock:mlci-ml-mlci-production')
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
        assert stepError('mlciDeploy', [env: 'qa']).contains('Docker engine on this agent')
    }
}
