package io.mlci

import org.junit.Test

class MlciBuildTest extends LibraryTestBase {

    @Test
    void 'runs mlci build with MLflow and registry credentials and returns the build report'() {
        givenFile('reports/build.json', buildReport())

        Map report = step('mlciBuild', [registryCredentialsId: 'registry-ci', mlflowCredentialsId: 'mlflow-ci']) as Map

        ShCall call = onlyMlciCall('build')
        assert call.script.contains('"$MLCI_BIN" build "$@"')
        assert call.env.MLCI_VERSION == ''
        assert call.env.MLCI_ALIAS == ''
        assert call.env.MLCI_REGISTRY_USERNAME == 'user-of-registry-ci'
        assert call.env.MLCI_REGISTRY_PASSWORD == 'secret-of-registry-ci'
        assert call.env.MLFLOW_TRACKING_PASSWORD == 'secret-of-mlflow-ci'
        assert report.images.api.tag == 'mlci-api:3-abc1234'
        assert report.images.api.digest == null
        assert log.any { it.contains('mlci-api:3-abc1234 (not pushed)') }
        assert log.any { it.startsWith('image api: mlci-api:3-abc1234 (no registry digest: not pushed)\nimage dashboard:') }
    }

    @Test
    void 'pushed images are logged with their digests'() {
        Map report = buildReport()
        report.images.api = [tag: 'reg.example.com/iris-api:3-abc1234', digest: 'reg.example.com/iris-api@sha256:abc']
        report.pushed = true
        givenFile('reports/build.json', report)

        step('mlciBuild')

        assert log.any { it.contains('image api: reg.example.com/iris-api:3-abc1234 reg.example.com/iris-api@sha256:abc') }
    }

    @Test
    void 'the registry login goes to a Docker config of this build, logged out of and deleted afterwards'() {
        givenFile('reports/build.json', buildReport())

        step('mlciBuild', [registryCredentialsId: 'registry-ci'])

        ShCall build = onlyMlciCall('build')
        assert build.env.DOCKER_CONFIG == '/ws@tmp/mlci-docker-config'
        ShCall cleanup = shCalls.last()
        assert cleanup.command == null
        assert cleanup.env.DOCKER_CONFIG == '/ws@tmp/mlci-docker-config'
        assert !cleanup.env.containsKey('MLCI_REGISTRY_PASSWORD')
        assert cleanup.script.contains('docker logout "$host"')
        assert cleanup.script.contains('rm -rf "$DOCKER_CONFIG"')
        assert !envVars.containsKey('DOCKER_CONFIG')
        assert !envVars.containsKey('MLCI_REGISTRY_PASSWORD')
    }

    @Test
    void 'the Docker config is cleaned up even when the build fails'() {
        exitCode('build', 1)

        assert stepError('mlciBuild', [registryCredentialsId: 'registry-ci']).contains('(exit 1)')
        assert shCalls*.label == ['mlci build', "mlci build: docker logout and remove the build's Docker config"]
    }

    @Test
    void 'without a registry credential nothing is logged in or cleaned'() {
        givenFile('reports/build.json', buildReport())

        step('mlciBuild')

        assert shCalls.size() == 1
        assert !onlyMlciCall('build').env.containsKey('DOCKER_CONFIG')
        assert !events.any { it.startsWith('withCredentials') }
    }

    @Test
    void 'version and alias are passed as quoted arguments from the environment'() {
        givenFile('reports/build.json', buildReport())

        step('mlciBuild', [version: '3'])

        ShCall call = onlyMlciCall('build')
        assert call.env.MLCI_VERSION == '3'
        assert call.script.contains('set -- --version "$MLCI_VERSION"')
        assert call.script.contains('set -- --alias "$MLCI_ALIAS"')
        assert !call.script.contains('3')
    }

    @Test
    void 'version and alias together are refused before running anything'() {
        assert stepError('mlciBuild', [version: '3', alias: 'candidate']).contains('either version or alias')
        assert shCalls.isEmpty()
    }

    @Test
    void 'exit 1, 2 and 3 each say what to look at'() {
        exitCode('build', 1)
        assert stepError('mlciBuild').contains('an image failed its check (exit 1)')
        exitCode('build', 2)
        assert stepError('mlciBuild').contains('(exit 2)')
        exitCode('build', 3)
        assert stepError('mlciBuild').contains('Docker engine')
    }
}
