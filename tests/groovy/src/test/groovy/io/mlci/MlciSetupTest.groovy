package io.mlci

import org.junit.Test

class MlciSetupTest extends LibraryTestBase {

    static final String VERSION = new File(ROOT, 'resources/io/mlci/VERSION').text.trim()

    @Test
    void 'installs mlci at the library version with the lock shipped in the library, not the checkout'() {
        Map tools = step('mlciSetup', [indexUrl: 'https://team.example.com/simple']) as Map

        assert files['.mlci/setup.sh'] == new File(ROOT, 'resources/io/mlci/setup.sh').text
        assert files['.mlci/requirements.txt'] == new File(ROOT, 'resources/io/mlci/requirements.txt').text
        assert events.contains('libraryResource:io/mlci/VERSION')
        assert shCalls.size() == 1
        ShCall call = shCalls[0]
        assert call.script == 'bash .mlci/setup.sh'
        assert call.env.MLCI_SOURCE == 'index'
        assert call.env.MLCI_VERSION == VERSION
        assert call.env.MLCI_LOCK_FILE == '.mlci/requirements.txt'
        assert call.env.MLCI_PYTHON == 'python3.11'
        assert call.env.MLCI_VENV == '.venv'
        assert call.env.MLCI_INDEX_URL == 'https://team.example.com/simple'
        assert !call.env.containsKey('MLCI_VENV_CACHE')
        assert !call.env.containsKey('MLCI_VENV_REUSE')
        assert tools == [venv: '.venv', mlci: '.venv/bin/mlci', version: VERSION]
    }

    @Test
    void 'the index comes from the parameters, else MLCI_PIP_INDEX_URL, else PIP_INDEX_URL'() {
        envVars.PIP_INDEX_URL = 'https://pip.example.com/simple'
        step('mlciSetup')
        envVars.MLCI_PIP_INDEX_URL = 'https://ml-pypi.example.com/simple'
        step('mlciSetup')
        step('mlciSetup', [indexUrl: 'https://team.example.com/simple', extraIndexUrl: 'https://extra.example.com/simple',
                           findLinks: '/srv/wheels', python: '/opt/py311/bin/python3', venvCache: '/cache/mlci', venv: 'env'])

        assert shCalls*.env*.MLCI_INDEX_URL == ['https://pip.example.com/simple', 'https://ml-pypi.example.com/simple',
                                                 'https://team.example.com/simple']
        ShCall last = shCalls[2]
        assert last.env.MLCI_EXTRA_INDEX_URL == 'https://extra.example.com/simple'
        assert last.env.MLCI_FIND_LINKS == '/srv/wheels'
        assert last.env.MLCI_PYTHON == '/opt/py311/bin/python3'
        assert last.env.MLCI_VENV_CACHE == '/cache/mlci'
        assert last.script == 'bash .mlci/setup.sh'
    }

    @Test
    void 'reports of a previous build are deleted before anything else'() {
        givenFile('reports/gate.json', gateReport())
        givenFile('reports/deploy-staging.json', deployReport('staging'))
        givenFile('data/iris.csv', 'a,b\n')

        step('mlciSetup', [findLinks: '/srv/wheels'])

        assert events[0] == 'deleteDir:reports/'
        assert !files.keySet().any { it.startsWith('reports/') }
        assert files.containsKey('data/iris.csv')
    }

    @Test
    void 'cleanReports false keeps them'() {
        givenFile('reports/gate.json', gateReport())

        step('mlciSetup', [cleanReports: false, findLinks: '/srv/wheels'])

        assert files.containsKey('reports/gate.json')
    }

    @Test
    void 'source checkout is the editable install of this repository, with its own lock'() {
        Map tools = step('mlciSetup', [source: 'checkout'])

        ShCall call = shCalls[0]
        assert call.env.MLCI_SOURCE == 'checkout'
        assert call.env.MLCI_LOCK_FILE == 'requirements/dev.txt'
        assert !files.containsKey('.mlci/requirements.txt')
        assert tools.version == VERSION
    }

    @Test
    void 'an unknown source is refused before anything runs'() {
        assert stepError('mlciSetup', [source: 'git']).contains("source must be 'index'")
        assert shCalls.isEmpty()
    }

    @Test
    void 'exit 2 says to install the interpreter or publish mlci at the library version'() {
        exitCode('mlci setup', 2)

        String message = stepError('mlciSetup', [indexUrl: 'https://team.example.com/simple'])

        assert message.startsWith("mlciSetup: cannot install mlci ${VERSION} on this agent (exit 2)")
        assert message.contains('python3.11 is installed here')
        assert message.contains("mlci==${VERSION} is published on https://team.example.com/simple")
        assert message.contains('make dist')
    }

    @Test
    void 'exit 2 in checkout mode says to commit the lock file'() {
        exitCode('mlci setup', 2)

        assert stepError('mlciSetup', [source: 'checkout']).contains('requirements/dev.txt is committed')
    }

    @Test
    void 'exit 3 says the package index is unreachable'() {
        exitCode('mlci setup', 3)

        String message = stepError('mlciSetup', [findLinks: '/srv/wheels'])

        assert message.contains('could not be reached (exit 3)')
        assert message.contains('the wheels in /srv/wheels')
    }

    @Test
    void 'another failure is reported with its status'() {
        exitCode('mlci setup', 9)

        assert stepError('mlciSetup', [findLinks: '/srv/wheels']).contains('exit status 9')
    }

    @Test
    void 'without an index or wheels nothing is installed, mlci would resolve on pypi'() {
        String message = stepError('mlciSetup')

        assert message.startsWith("mlciSetup: no package index for mlci ${VERSION}: set indexUrl")
        assert message.contains('MLCI_PIP_INDEX_URL or PIP_INDEX_URL')
        assert message.contains('findLinks')
        assert shCalls.isEmpty()
    }

    @Test
    void 'the checkout source needs no index as its lock has hashes'() {
        step('mlciSetup', [source: 'checkout'])

        assert shCalls.size() == 1
    }

    @Test
    void 'credentials in an index URL are never printed'() {
        envVars.MLCI_PIP_INDEX_URL = 'https://ci:s3cret-token@pypi.example.com/simple'
        exitCode('mlci setup', 2)
        String notPublished = stepError('mlciSetup')
        exitCode('mlci setup', 3)
        String unreachable = stepError('mlciSetup', [extraIndexUrl: 'https://bot:other-token@extra.example.com/simple'])

        assert notPublished.contains('is published on https://***@pypi.example.com/simple')
        assert unreachable.contains('check that https://***@pypi.example.com/simple is reachable')
        assert log.any { it.contains('extraIndexUrl https://***@extra.example.com/simple mixes two indexes') }
        String printed = ([notPublished, unreachable] + log).join('\n')
        assert !printed.contains('s3cret-token') && !printed.contains('other-token')
        // The real URL still reaches setup.sh, through the environment only.
        assert shCalls[0].env.MLCI_INDEX_URL == 'https://ci:s3cret-token@pypi.example.com/simple'
    }

    @Test
    void 'an extra index is allowed with a one-line warning'() {
        step('mlciSetup', [indexUrl: 'https://team.example.com/simple', extraIndexUrl: 'https://extra.example.com/simple'])

        assert log.count { it.contains('mixes two indexes') } == 1
        assert shCalls[0].env.MLCI_EXTRA_INDEX_URL == 'https://extra.example.com/simple'
    }

    @Test
    void 'a pull request from a fork gets a private venv and never the shared cache'() {
        envVars.CHANGE_ID = '7'
        envVars.CHANGE_FORK = 'mallory'

        step('mlciSetup', [indexUrl: 'https://team.example.com/simple', venvCache: '/cache/mlci'])

        ShCall call = shCalls[0]
        assert call.env.MLCI_VENV_CACHE == '/ws@tmp/mlci-private-venvs'
        assert call.env.MLCI_VENV_REUSE == 'false'
        assert log.any { it.contains("pull request from the fork 'mallory': a private venv") }
    }

    @Test
    void 'a pull request from a fork in checkout mode gets a private venv too'() {
        envVars.CHANGE_ID = '7'
        envVars.CHANGE_FORK = 'mallory'

        step('mlciSetup', [source: 'checkout'])

        assert shCalls[0].env.MLCI_VENV_CACHE == '/ws@tmp/mlci-private-venvs'
        assert shCalls[0].env.MLCI_VENV_REUSE == 'false'
    }

    @Test
    void 'each team folder has its own venv cache, named by the job folder, never by a parameter'() {
        envVars.JOB_NAME = 'team-b/churn/main'
        step('mlciSetup', [indexUrl: 'https://team.example.com/simple'])
        envVars.JOB_NAME = 'org/team-a/churn/feature%2Fx'
        envVars.BRANCH_NAME = 'feature/x'
        step('mlciSetup', [indexUrl: 'https://team.example.com/simple', scope: 'team-b'])

        assert shCalls*.env*.MLCI_VENV_SCOPE == ['team-b', 'org/team-a']
    }
}
