package io.mlci

import org.junit.Test

class MlciSetupTest extends LibraryTestBase {

    @Test
    void 'writes the setup script from the library resources and runs it with the defaults'() {
        Map tools = step('mlciSetup') as Map

        assert events.indexOf('libraryResource:io/mlci/setup.sh') < events.indexOf('writeFile:.mlci/setup.sh')
        assert files['.mlci/setup.sh'] == new File(ROOT, 'resources/io/mlci/setup.sh').text
        assert shCalls.size() == 1
        ShCall call = shCalls[0]
        assert call.script == 'bash .mlci/setup.sh'
        assert call.env.MLCI_PYTHON == 'python3.11'
        assert call.env.MLCI_LOCK_FILE == 'requirements/dev.txt'
        assert call.env.MLCI_VENV == '.venv'
        assert !call.env.containsKey('MLCI_VENV_CACHE')
        assert tools == [venv: '.venv', mlci: '.venv/bin/mlci']
    }

    @Test
    void 'parameters reach the script through the environment'() {
        Map tools = step('mlciSetup', [python: '/opt/py311/bin/python3', lockFile: 'requirements/ci.txt',
                                      venvCache: '/cache/mlci', venv: 'env'])

        ShCall call = shCalls[0]
        assert call.script == 'bash .mlci/setup.sh'
        assert call.env.MLCI_PYTHON == '/opt/py311/bin/python3'
        assert call.env.MLCI_LOCK_FILE == 'requirements/ci.txt'
        assert call.env.MLCI_VENV_CACHE == '/cache/mlci'
        assert tools.mlci == 'env/bin/mlci'
    }

    @Test
    void 'the setup script installs the hashed lock, caches per lock hash and installs the checkout'() {
        String script = new File(ROOT, 'resources/io/mlci/setup.sh').text

        assert script.contains('-m venv')
        assert script.contains('--require-hashes -r "$lock"')
        assert script.contains('--no-deps --no-build-isolation -e .')
        assert script.contains('sha256sum "$lock"')
        assert script.contains('venv-${hash}')
        assert script.contains('.mlci-lock-sha256')
    }

    @Test
    void 'exit 2 says to install Python 3-11 or commit the lock file'() {
        exitCode('mlci setup', 2)

        String message = stepError('mlciSetup')

        assert message.contains('python3.11 is installed on this agent')
        assert message.contains('requirements/dev.txt is committed')
    }

    @Test
    void 'exit 3 says the package index is unreachable'() {
        exitCode('mlci setup', 3)

        String message = stepError('mlciSetup')

        assert message.contains('exit 3')
        assert message.contains('package index')
    }

    @Test
    void 'another failure is reported with its status'() {
        exitCode('mlci setup', 9)

        assert stepError('mlciSetup').contains('exit status 9')
    }
}
