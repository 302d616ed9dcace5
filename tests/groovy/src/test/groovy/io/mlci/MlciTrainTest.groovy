package io.mlci

import org.junit.Test

class MlciTrainTest extends LibraryTestBase {

    @Test
    void 'runs mlci train with the default mlci path and config and returns the train report'() {
        givenFile('reports/train.json', trainReport())

        Map report = step('mlciTrain') as Map

        ShCall call = onlyMlciCall('train')
        assert call.script == '"$MLCI_BIN" train'
        assert call.env.MLCI_BIN == '.venv/bin/mlci'
        assert call.env.MLCI_CONFIG == 'mlci.yaml'
        assert report.version == '3'
        assert report.model_name == 'iris'
        assert log.any { it.contains('iris version 3') && it.contains('accuracy = 0.97') }
    }

    @Test
    void 'a caller can point at another mlci and config'() {
        givenFile('reports/train.json', trainReport())

        step('mlciTrain', [mlci: 'tools/mlci', config: 'configs/prod.yaml'])

        ShCall call = onlyMlciCall('train')
        assert call.env.MLCI_BIN == 'tools/mlci'
        assert call.env.MLCI_CONFIG == 'configs/prod.yaml'
    }

    @Test
    void 'exit 1 says training said no'() {
        exitCode('train', 1)

        String message = stepError('mlciTrain')

        assert message.contains('mlci train')
        assert message.contains('exit 1')
    }

    @Test
    void 'exit 2 points at the config'() {
        exitCode('train', 2)

        String message = stepError('mlciTrain')

        assert message.contains('exit 2')
        assert message.contains('fix mlci.yaml')
    }

    @Test
    void 'exit 3 points at MLflow and Docker'() {
        exitCode('train', 3)

        String message = stepError('mlciTrain')

        assert message.contains('exit 3')
        assert message.contains('MLflow')
        assert message.contains('Docker')
    }
}
