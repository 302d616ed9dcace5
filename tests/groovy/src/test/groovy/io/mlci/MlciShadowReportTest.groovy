package io.mlci

import org.junit.Test

class MlciShadowReportTest extends LibraryTestBase {

    static final String REPORT = '{"env": "staging", "source": "production", "share": 0.1, "on": true, ' +
        '"candidate_version": "3", "production_version": "2", "comparison": {"mirrored": 40, "compared": 40}, ' +
        '"summary": "shadow production -> staging (v3 vs v2): 40 requests compared"}'

    @Test
    void 'runs mlci shadow report with MLflow credentials and returns the parsed report'() {
        givenFile('reports/shadow-staging.json', REPORT)

        Map report = step('mlciShadowReport', [env: 'staging', mlflowCredentialsId: 'mlflow-ci']) as Map

        ShCall call = onlyMlciCall('shadow')
        assert call.script.contains('"$MLCI_BIN" shadow report --env "$MLCI_SHADOW_ENV"')
        assert call.env.MLCI_SHADOW_ENV == 'staging'
        assert call.env.MLFLOW_TRACKING_PASSWORD == 'secret-of-mlflow-ci'
        assert report.summary == 'shadow production -> staging (v3 vs v2): 40 requests compared'
        assert report.production_version == '2'
    }

    @Test
    void 'no report written (shadow not configured) returns null'() {
        assert step('mlciShadowReport', [env: 'staging']) == null
    }

    @Test
    void 'any other failure fails the step'() {
        exitCode('shadow', 3)
        try {
            step('mlciShadowReport', [env: 'staging'])
            assert false: 'expected a failure'
        } catch (AssertionError expected) {
            throw expected
        } catch (Exception e) {
            assert e.message.contains('exit 3')
        }
    }

    /** Runs the step's shell script with a real sh and a stand-in mlci that prints OUTPUT and exits CODE. */
    Map realScript(String output, int code) {
        step('mlciShadowReport', [env: 'staging'])
        String script = onlyMlciCall('shadow').script
        File dir = File.createTempDir()
        try {
            File fake = new File(dir, 'mlci')
            fake.text = "#!/bin/sh\nprintf '%s\\n' '${output}' >&2\nexit ${code}\n"
            fake.setExecutable(true)
            new File(dir, 'reports').mkdirs()
            File stale = new File(dir, 'reports/shadow-staging.json')
            stale.text = '{}'
            ProcessBuilder pb = new ProcessBuilder('sh', '-c', script).directory(dir).redirectErrorStream(true)
            pb.environment().putAll([MLCI_BIN: fake.path, MLCI_SHADOW_ENV: 'staging'])
            Process process = pb.start()
            String text = process.inputStream.text
            return [status: process.waitFor(), output: text, staleLeft: stale.exists()]
        } finally {
            dir.deleteDir()
        }
    }

    @Test
    void 'the script turns mlci exit 2 "no environment mirrors its traffic" into exit 0 without a report'() {
        Map run = realScript('no environment mirrors its traffic to staging', 2)

        assert run.status == 0
        assert run.output.contains('no shadow traffic configured for staging')
        assert !run.staleLeft
    }

    @Test
    void 'the script keeps other exit codes (bad input 2, unreachable 3)'() {
        assert realScript('environments.staging: unknown', 2).status == 2
        shCalls.clear()
        Map unreachable = realScript('production did not answer', 3)
        assert unreachable.status == 3
        assert unreachable.output.contains('production did not answer')
    }
}
