package io.mlci

import org.junit.Test

class MlciGateTest extends LibraryTestBase {

    @Test
    void 'runs mlci gate, archives the table, puts it in the description and returns the report'() {
        givenFile('reports/gate.json', gateReport())

        Map report = step('mlciGate') as Map

        ShCall call = onlyMlciCall('gate')
        assert call.script == '"$MLCI_BIN" gate'
        assert call.env.MLCI_CONFIG == 'mlci.yaml'
        assert report.passed
        assert report.production.version == '2'
        String table = gateReport().table
        assert files['reports/gate-table.txt'].contains(table)
        assert events.contains('archive:reports/gate.json, reports/gate-table.txt')
        assert build.description.startsWith('Gate PASSED: iris v3 vs production v2 (accuracy)')
        assert build.description.contains(table)
        assert log.any { it.contains(table) }
        assert build.result == null
    }

    @Test
    void 'a first model (nothing in production) is described as such'() {
        givenFile('reports/gate.json', gateReport(production: null))

        step('mlciGate')

        assert build.description.startsWith('Gate PASSED: iris v3 vs no model in production')
    }

    @Test
    void 'a failed gate fails the build with the reasons, after publishing the comparison'() {
        givenFile('reports/gate.json', gateReport(passed: false,
            reasons: ['accuracy 0.90 < production 0.95 - 0.01']))
        exitCode('gate', 1)

        String message = stepError('mlciGate')

        assert message.startsWith('Quality gate failed for iris v3: accuracy 0.90 < production 0.95 - 0.01.')
        assert build.description.startsWith('Gate FAILED')
        assert events.indexOf('archive:reports/gate.json, reports/gate-table.txt') < events.findIndexOf { it.startsWith('error:') }
    }

    @Test
    void 'failOnGateFailure false marks the build unstable and returns the report'() {
        givenFile('reports/gate.json', gateReport(passed: false, reasons: ['worse than production']))
        exitCode('gate', 1)

        Map report = step('mlciGate', [failOnGateFailure: false]) as Map

        assert !report.passed
        assert build.result == 'UNSTABLE'
        assert !events.any { it.startsWith('error:') }
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
