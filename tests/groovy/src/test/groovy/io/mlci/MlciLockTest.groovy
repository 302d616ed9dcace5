package io.mlci

import org.junit.Test

class MlciLockTest extends LibraryTestBase {

    Object lockAround(Map config, Closure body) {
        return libraryVar('mlciLock').invokeMethod('call', [config, body] as Object[])
    }

    @Test
    void 'holds the lock named after the project of mlci yaml around the body and returns its result'() {
        givenFile('mlci.yaml', 'project: churn\ndata:\n  path: data/churn.csv\n')

        Object result = lockAround([env: 'staging']) {
            assert locksHeld == ['mlci-churn-staging'] as Set
            return 42
        }

        assert result == 42
        assert events.indexOf('lock:mlci-churn-staging') < events.indexOf('unlock:mlci-churn-staging')
        assert locksHeld.isEmpty()
    }

    @Test
    void 'the job name, the branch and env MLCI_PROJECT do not change the lock: all jobs of a project share it'() {
        givenFile('mlci.yaml', 'project: churn\n')
        envVars.JOB_NAME = 'ml/churn-model/feature%2Fx'
        envVars.BRANCH_NAME = 'feature/x'
        envVars.MLCI_PROJECT = 'something-else'

        lockAround([env: 'production']) { -> null }

        assert events.contains('lock:mlci-churn-production')
    }

    @Test
    void 'the config file comes from the parameter or env MLCI_CONFIG'() {
        givenFile('configs/ci.yaml', 'project: fraud\n')
        givenFile('configs/other.yaml', 'project: spam\n')
        envVars.MLCI_CONFIG = 'configs/ci.yaml'

        lockAround([env: 'staging']) { -> null }
        lockAround([env: 'staging', config: 'configs/other.yaml']) { -> null }

        assert events.findAll { it.startsWith('lock:') } == ['lock:mlci-fraud-staging', 'lock:mlci-spam-staging']
    }

    @Test
    void 'a project parameter overrides mlci yaml and needs no workspace'() {
        files.clear()

        lockAround([env: 'production', project: 'churn', inversePrecedence: true]) { -> null }

        assert events.contains('lock:mlci-churn-production')
        assert lockArgs[0].inversePrecedence == true
    }

    @Test
    void 'a missing mlci yaml or project key is named, and nothing runs'() {
        files.clear()
        boolean ran = false
        assert lockError([env: 'staging']) { ran = true }.contains('mlci.yaml not found in the workspace')

        givenFile('mlci.yaml', 'data:\n  path: x.csv\n')
        assert lockError([env: 'staging']) { ran = true }.contains("mlci.yaml has no 'project' key")
        assert !ran
        assert !events.any { it.startsWith('lock:') }
    }

    @Test
    void 'enabled false runs the body without a lock'() {
        Object result = lockAround([env: 'production', enabled: false]) { -> 'ran' }

        assert result == 'ran'
        assert !events.any { it.startsWith('lock:') }
    }

    @Test
    void 'env is required'() {
        assert lockError([:]) { -> null }.startsWith("mlciLock: missing required parameter 'env'")
    }

    String lockError(Map config, Closure body) {
        try {
            lockAround(config, body)
        } catch (hudson.AbortException error) {
            return error.message
        }
        throw new AssertionError('expected an error')
    }
}
