package io.mlci

import org.junit.Test

class MlciRollbackTest extends LibraryTestBase {

    @Test
    void 'rolls the environment back under its lock and returns the report'() {
        givenFile('reports/deploy-production.json', deployReport('production', [colour: 'blue', model_version: '2']))

        Map report = step('mlciRollback', [env: 'production']) as Map

        ShCall call = onlyMlciCall('rollback')
        assert call.script == '"$MLCI_BIN" rollback --env "$MLCI_ENV"'
        assert call.env.MLCI_ENV == 'production'
        assert call.locks == ['mlci/ml/mlci/production'] as Set
        assert report.current.model_version == '2'
        assert build.description.contains('production: rolled back to model v2 (blue)')
    }

    @Test
    void 'the lock is named after the project of the config file, rollback talks to MLflow with its credentials'() {
        givenFile('ops/mlci.yaml', 'project: churn\n')
        givenFile('reports/deploy-production.json', deployReport('production'))

        step('mlciRollback', [env: 'production', config: 'ops/mlci.yaml', mlflowCredentialsId: 'mlflow-ci'])

        ShCall call = onlyMlciCall('rollback')
        assert call.locks == ['mlci/ml/churn/production'] as Set
        assert call.env.MLCI_CONFIG == 'ops/mlci.yaml'
        assert call.env.MLFLOW_TRACKING_PASSWORD == 'secret-of-mlflow-ci'
    }

    @Test
    void 'a report with null fields (nothing left to roll back to) is read without error'() {
        givenFile('reports/deploy-production.json', '{"env": "production", "current": null, "records": []}')

        Map report = step('mlciRollback', [env: 'production']) as Map

        assert report.current == null
        assert !log.any { it.contains('vnull') }
        assert log.any { it.contains('production serves nothing recorded') }
    }

    @Test
    void 'a rollback that wrote no report is reported without a readJSON failure'() {
        Map report = step('mlciRollback', [env: 'production']) as Map

        assert report == [:]
        assert jsonReads.isEmpty()
        assert log.any { it.contains('reports/deploy-production.json was not written') }
        assert build.description == 'production: rolled back to the previous colour'
    }

    @Test
    void 'env is required'() {
        assert stepError('mlciRollback').startsWith("mlciRollback: missing required parameter 'env'")
    }

    @Test
    void 'exit 1 says the environment is unchanged'() {
        exitCode('rollback', 1)

        String message = stepError('mlciRollback', [env: 'production'])

        assert message.contains('was refused (exit 1)')
        assert message.contains('the environment is unchanged')
    }

    @Test
    void 'exit 3 says what to check'() {
        exitCode('rollback', 3)

        assert stepError('mlciRollback', [env: 'production']).contains('could not reach a dependency')
    }
}
