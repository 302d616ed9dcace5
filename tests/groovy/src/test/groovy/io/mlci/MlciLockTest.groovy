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
            assert locksHeld == ['mlci/ml/churn/staging'] as Set
            return 42
        }

        assert result == 42
        assert events.indexOf('lock:mlci/ml/churn/staging') < events.indexOf('unlock:mlci/ml/churn/staging')
        assert locksHeld.isEmpty()
    }

    @Test
    void 'the branch, the repository and env MLCI_PROJECT do not change the lock: all jobs of the folder share it'() {
        givenFile('mlci.yaml', 'project: churn\n')
        envVars.JOB_NAME = 'ml/churn-model/feature%2Fx'
        envVars.BRANCH_NAME = 'feature/x'
        envVars.MLCI_PROJECT = 'something-else'

        lockAround([env: 'production']) { -> null }

        assert events.contains('lock:mlci/ml/churn/production')
    }

    @Test
    void 'another team folder writing the same project takes its own lock, never this one'() {
        givenFile('mlci.yaml', 'project: churn\n')
        envVars.JOB_NAME = 'team-b/their-repo/main'

        lockAround([env: 'production']) { -> null }
        envVars.JOB_NAME = 'org/team-c/rollback-churn'
        envVars.remove('BRANCH_NAME')
        lockAround([env: 'production']) { -> null }
        envVars.MLCI_LOCK_NAMESPACE = 'ml'
        lockAround([env: 'production']) { -> null }

        assert events.findAll { it.startsWith('lock:') } == ['lock:mlci/team-b/churn/production',
            'lock:mlci/org/team-c/churn/production', 'lock:mlci/ml/churn/production']
    }

    @Test
    void 'the lock blocks builds of every job of the folder on the environment, never another folder using the same project'() {
        givenFile('mlci.yaml', 'project: churn\n')
        Controller.Build rollbackJob = controller.build('ml/rollback-churn', 12)
        controller.acquire(rollbackJob, 'mlci/ml/churn/production', false)
        Controller.Build teamB = controller.build('team-b/their-repo/main', 3)
        controller.acquire(teamB, 'mlci/team-b/churn/production', false)
        controller.elsewhere << { -> controller.release(rollbackJob, 'mlci/ml/churn/production') }

        lockAround([env: 'production']) { -> assert controller.holds(thisBuild(), 'mlci/ml/churn/production') }

        assert events.indexOf('lock-wait:mlci/ml/churn/production') < events.indexOf('lock:mlci/ml/churn/production')
        // Team B's lock on its own "churn" was never in the way, and is still held.
        assert controller.holds(teamB, 'mlci/team-b/churn/production')
        assert !controller.owners.containsKey('mlci/ml/churn/production')
    }

    @Test
    void 'a project or environment that is not an mlci name is refused before any lock is named'() {
        givenFile('mlci.yaml', 'project: null\n')
        assert stepError('mlciLockName', [project: null, env: 'staging']).contains("project 'null' is not a valid mlci name")
        assert stepError('mlciLockName', [project: 'iris', env: '../prod']).contains("env '../prod' is not a valid")
        assert step('mlciLockName', [project: 'iris', env: 'staging']) == 'mlci/ml/iris/staging'
        assert !events.any { it.startsWith('lock:') }
    }

    @Test
    void 'the config file comes from the parameter or env MLCI_CONFIG'() {
        givenFile('configs/ci.yaml', 'project: fraud\n')
        givenFile('configs/other.yaml', 'project: spam\n')
        envVars.MLCI_CONFIG = 'configs/ci.yaml'

        lockAround([env: 'staging']) { -> null }
        lockAround([env: 'staging', config: 'configs/other.yaml']) { -> null }

        assert events.findAll { it.startsWith('lock:') } == ['lock:mlci/ml/fraud/staging', 'lock:mlci/ml/spam/staging']
    }

    @Test
    void 'a project parameter overrides mlci yaml and needs no workspace'() {
        files.clear()

        lockAround([env: 'production', project: 'churn', inversePrecedence: true]) { -> null }

        assert events.contains('lock:mlci/ml/churn/production')
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
