package io.mlci

import org.junit.Before
import org.junit.Test

/**
 * Untrusted values (branch names, build parameters, step parameters) reach `sh` only through the
 * environment, never inside the script text.
 */
class InjectionTest extends PipelineTestBase {

    static final String BRANCH = 'feature/$(touch pwned)'
    static final String PARAM = 'mlci.yaml`touch pwned`'

    @Before
    void givenReports() {
        givenAllReports()
    }

    void assertNoScriptContains(String... values) {
        assert !shCalls.isEmpty()
        shCalls.each { ShCall call ->
            values.each { String value ->
                assert !call.script.contains(value): "sh script contains untrusted '${value}': ${call.script}"
                assert !call.script.contains('pwned'): "sh script contains 'pwned': ${call.script}"
            }
        }
    }

    @Test
    void 'a hostile branch name and a parameter with backticks never enter a script'() {
        envVars.BRANCH_NAME = BRANCH
        params.MLCI_CONFIG = PARAM

        runJenkinsfile()

        assertNoScriptContains(BRANCH, PARAM, '`')
        assert mlciCalls().every { it.env.MLCI_CONFIG == PARAM }
        assert events[0] == "library:mlci@${BRANCH}".toString()
    }

    @Test
    void 'the same on the deploy branch, through every stage'() {
        envVars.BRANCH_NAME = 'main'
        params.MLCI_CONFIG = PARAM
        givenFile(PARAM, 'project: iris\n')  // the pipeline reads the config's project (lock names)
        envVars.CHANGE_TITLE = 'fix `touch pwned`'
        inputAnswer = { Map args -> 'eve$(touch pwned)' }

        runJenkinsfile()

        assert mlciCommandOrder() == ['test', 'train', 'gate', 'build', 'deploy', 'deploy']
        assertNoScriptContains(PARAM, '$(touch', '`')
        assert mlciCalls('deploy')[1].env.MLCI_APPROVER == 'eve$(touch pwned)'
    }

    @Test
    void 'step parameters never enter a script'() {
        String hostile = '1; touch pwned'
        givenFile('reports/deploy-x; touch pwned.json', deployReport('x'))

        step('mlciSetup', [python: hostile, lockFile: hostile, venvCache: hostile, venv: hostile, indexUrl: hostile,
                           extraIndexUrl: hostile, findLinks: hostile])
        givenAllReports() // mlciSetup deleted reports/
        step('mlciBuild', [version: hostile, registryCredentialsId: 'registry', mlci: hostile])
        // A hostile environment or project never names a lock (mlciLockName refuses it); without the lock, it
        // still never enters a script.
        assert stepError('mlciDeploy', [env: 'x; touch pwned', project: 'iris']).contains("env 'x; touch pwned' is not a valid")
        step('mlciDeploy', [env: 'x; touch pwned', version: hostile, approver: hostile, force: true, reason: hostile,
                            project: hostile, lock: false])
        files['reports/deploy-x; touch pwned.json'] = deployReport('x')
        step('mlciRollback', [env: 'x; touch pwned', lock: false])
        step('mlciTrain', [mlci: hostile, config: hostile])

        assertNoScriptContains(hostile)
        assert mlciCalls('deploy')[0].env.MLCI_ENV == 'x; touch pwned'
        assert mlciCalls('deploy')[0].env.MLCI_REASON == hostile
        assert shCalls.find { it.label == 'mlci setup' }.env.MLCI_INDEX_URL == hostile
    }

    @Test
    void 'a hostile deploy reason and a hostile mlci yaml project never enter a script'() {
        String reason = 'ok"; touch pwned; echo "'
        givenFile('mlci.yaml', 'project: "x$(touch pwned)"\n')
        givenFile('reports/deploy-production.json', deployReport('production'))

        assert stepError('mlciDeploy', [env: 'production', force: true, reason: reason])
            .contains("project 'x\$(touch pwned)' is not a valid mlci name")
        assert mlciCalls('deploy').isEmpty() && lockArgs.isEmpty()

        givenFile('mlci.yaml', 'project: iris\n')
        step('mlciDeploy', [env: 'production', force: true, reason: reason])

        assertNoScriptContains(reason)
        ShCall call = onlyMlciCall('deploy')
        assert call.env.MLCI_REASON == reason
        assert call.script.contains('--force --reason "$MLCI_REASON"')
        assert call.locks == ['mlci/ml/iris/production'] as Set
    }

    @Test
    void 'no step builds a shell script with Groovy interpolation'() {
        new File(ROOT, 'vars').listFiles().findAll { it.name.endsWith('.groovy') }.each { File f ->
            String source = f.text
            assert !(source =~ /\bsh\s*\(?\s*"/): "${f.name}: sh with a double-quoted string"
            assert !(source =~ /script:\s*"/): "${f.name}: script: with a double-quoted string"
            assert !(source =~ /\bsh\s*\(?\s*'''[^']*\$\{/): "${f.name}: interpolation in sh"
        }
        String jenkinsfile = new File(ROOT, 'Jenkinsfile').text
        assert !(jenkinsfile =~ /\bsh\b/): 'the Jenkinsfile runs shell only through the library steps'
    }
}
