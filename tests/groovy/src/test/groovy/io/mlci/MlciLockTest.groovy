package io.mlci

import org.junit.Test

class MlciLockTest extends LibraryTestBase {

    @Test
    void 'holds the environment lock around the body and returns its result'() {
        envVars.MLCI_PROJECT = 'churn'

        Object result = libraryVar('mlciLock').invokeMethod('call', [[env: 'staging'], {
            assert locksHeld == ['mlci-churn-staging'] as Set
            return 42
        }] as Object[])

        assert result == 42
        assert events.indexOf('lock:mlci-churn-staging') < events.indexOf('unlock:mlci-churn-staging')
        assert locksHeld.isEmpty()
    }

    @Test
    void 'the project defaults to the multibranch project, not the branch'() {
        envVars.JOB_NAME = 'ml/churn-model/feature%2Fx'
        envVars.BRANCH_NAME = 'feature/x'

        libraryVar('mlciLock').invokeMethod('call', [[env: 'production'], { -> null }] as Object[])

        assert events.contains('lock:mlci-ml-churn-model-production')
    }

    @Test
    void 'enabled false runs the body without a lock'() {
        Object result = libraryVar('mlciLock').invokeMethod('call', [[env: 'production', enabled: false], { -> 'ran' }] as Object[])

        assert result == 'ran'
        assert !events.any { it.startsWith('lock:') }
    }

    @Test
    void 'env is required'() {
        try {
            libraryVar('mlciLock').invokeMethod('call', [[:], { -> null }] as Object[])
            assert false: 'expected an error'
        } catch (hudson.AbortException error) {
            assert error.message.startsWith("mlciLock: missing required parameter 'env'")
        }
    }
}
