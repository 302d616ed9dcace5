package io.mlci

import org.junit.Test

class MlciGateTest extends LibraryTestBase {

    static final String TABLE_URL = 'https://jenkins.example.com/job/ml/job/mlci/job/main/7/artifact/reports/gate-table.txt'

    @Test
    void 'runs mlci gate, archives the table and returns a summary of the verdict'() {
        givenFile('reports/gate.json', gateReport())

        Map gate = step('mlciGate') as Map

        ShCall call = onlyMlciCall('gate')
        assert call.script == '"$MLCI_BIN" gate'
        assert call.env.MLCI_CONFIG == 'mlci.yaml'
        assert gate == [model: 'iris', version: '3', metric: 'accuracy', candidate: 0.97, production: 0.95,
                        productionVersion: '2', runId: null, runUrl: null, tableUrl: TABLE_URL, passed: true,
                        blocking: true, summary: 'Gate PASSED: iris v3, accuracy 0.9700 vs production v2 0.9500']
        String table = gateReport().table
        assert files['reports/gate-table.txt'].contains(table)
        assert events.contains('archive:reports/gate.json, reports/gate-table.txt')
        assert log.any { it.contains(table) }
        assert build.result == null
        assert jsonReads == [[file: 'reports/gate.json', returnPojo: true]]
    }

    @Test
    void 'the build description is one plain-text line with the MLflow run and gate table URLs written out'() {
        givenFile('reports/gate.json', gateReport(candidate: [version: '3', run_id: 'r123', metrics: [accuracy: 0.97]]))
        Map run = trainReport(tracking_uri: 'https://mlflow.example.com/', experiment_id: '5')

        Map gate = step('mlciGate', [run: run]) as Map

        assert gate.runUrl == 'https://mlflow.example.com/#/experiments/5/runs/r123'
        assert build.description == 'Gate PASSED: iris v3, accuracy 0.9700 vs production v2 0.9500 | ' +
            'MLflow run: https://mlflow.example.com/#/experiments/5/runs/r123 | ' +
            "gate table: ${TABLE_URL}"
        assert !build.description.contains('\n')
        assert !build.description.contains('<a ')
    }

    @Test
    void 'untrusted names stay on one line of text and a local tracking store gets no run URL'() {
        givenFile('reports/gate.json', gateReport(model_name: 'iris\nFAKE: deployed\r\u0000'))
        Map run = trainReport(tracking_uri: 'sqlite:///.mlci/mlflow.db', experiment_id: '1')

        Map gate = step('mlciGate', [run: run]) as Map

        assert gate.runUrl == null
        assert build.description.startsWith('Gate PASSED: iris FAKE: deployed v3')
        assert !(build.description =~ /\p{Cntrl}/)
        assert !build.description.contains('MLflow run')
    }

    @Test
    void 'credentials in the tracking URI never reach the run URL'() {
        givenFile('reports/gate.json', gateReport(candidate: [version: '3', run_id: 'r123', metrics: [accuracy: 0.97]]))
        Map run = trainReport(tracking_uri: 'https://ci:s3cret@mlflow.example.com', experiment_id: '5')

        Map gate = step('mlciGate', [run: run]) as Map

        assert gate.runUrl == 'https://mlflow.example.com/#/experiments/5/runs/r123'
        assert !build.description.contains('s3cret')
    }

    @Test
    void 'a first build, with nothing in production (JSON null), passes and says so'() {
        // mlci gate writes "production": null; json-lib would read it as a truthy JSONNull.
        givenFile('reports/gate.json', '{"passed": true, "model_name": "iris", "primary_metric": "accuracy", ' +
            '"candidate": {"version": "1", "run_id": "r1", "metrics": {"accuracy": 0.93}}, "production": null, ' +
            '"reasons": [], "table": "check  candidate v1  production (none)"}')

        Map gate = step('mlciGate') as Map

        assert gate.passed
        assert gate.production == null
        assert gate.productionVersion == null
        assert gate.summary == 'Gate PASSED: iris v1, accuracy 0.9300 vs nothing in production yet'
        assert build.description.startsWith('Gate PASSED: iris v1, accuracy 0.9300 vs nothing in production yet')
        assert build.result == null
    }

    @Test
    void 'a failed gate fails the build with the reasons, after publishing the comparison'() {
        givenFile('reports/gate.json', gateReport(passed: false,
            reasons: ['accuracy 0.90 < production 0.95 - 0.01']))
        exitCode('gate', 1)

        String message = stepError('mlciGate')

        assert message == 'Quality gate failed for iris v3: accuracy 0.90 < production 0.95 - 0.01. ' +
            'The comparison is in reports/gate-table.txt.'
        assert build.description.startsWith('Gate FAILED')
        assert events.indexOf('archive:reports/gate.json, reports/gate-table.txt') < events.findIndexOf { it.startsWith('error:') }
    }

    @Test
    void 'a failed gate on a pull request (not blocking) marks the build unstable with unstable() and returns'() {
        envVars.CHANGE_ID = '42'
        givenFile('reports/gate.json', gateReport(passed: false, reasons: ['worse than production']))
        exitCode('gate', 1)

        Map gate = step('mlciGate', [failOnGateFailure: false]) as Map

        assert !gate.passed
        assert !gate.blocking
        assert build.result == 'UNSTABLE'
        assert events.contains('unstable:Quality gate failed for iris v3: worse than production. The comparison is ' +
            'in reports/gate-table.txt. Not failing the build: this gate is not blocking (failOnGateFailure: false).')
        assert !events.any { it.startsWith('error:') }
        assert new File(ROOT, 'vars/mlciGate.groovy').text.contains('unstable(')
        assert !new File(ROOT, 'vars/mlciGate.groovy').text.contains("result = 'UNSTABLE'")
    }

    @Test
    void 'a failed gate on a pull request that is blocking fails with a clear message'() {
        envVars.CHANGE_ID = '42'
        givenFile('reports/gate.json', gateReport(passed: false, production: null, reasons: ['accuracy below 0.9']))
        exitCode('gate', 1)

        String message = stepError('mlciGate', [failOnGateFailure: true])

        assert message.startsWith('Quality gate failed for iris v3: accuracy below 0.9.')
        assert build.description.startsWith('Gate FAILED: iris v3, accuracy 0.9700 vs nothing in production yet')
    }

    @Test
    void 'exit 1 without a report says so'() {
        exitCode('gate', 1)

        assert stepError('mlciGate').contains('without writing reports/gate.json')
    }

    @Test
    void 'exit 2 and 3 do not read a report'() {
        exitCode('gate', 2)
        assert stepError('mlciGate').contains('rejected its input (exit 2)')

        exitCode('gate', 3)
        assert stepError('mlciGate').contains('could not reach a dependency (exit 3)')
        assert build.description == null
    }
}
