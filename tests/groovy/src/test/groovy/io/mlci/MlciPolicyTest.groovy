package io.mlci

import org.junit.Test

/** vars/mlciPolicy.groovy on its own (mlciPipeline's tests run it inside a whole pipeline). */
class MlciPolicyTest extends LibraryTestBase {

    @Test
    void 'without administrator settings a Jenkinsfile may choose, and nothing is refused'() {
        step('mlciPolicy', [deployBranch: 'release', submitter: 'ml-leads', agentLabel: 'ml-docker'])

        assert shCalls.isEmpty() && !events.any { it.startsWith('error:') }
    }

    @Test
    void 'each widening names the setting and the administrator value'() {
        envVars.MLCI_DEPLOY_BRANCH = 'main'
        envVars.MLCI_APPROVERS = 'ml-leads'
        envVars.MLCI_AGENT_LABEL = 'ml-test'

        assert stepError('mlciPolicy', [deployBranch: 'dev']).contains("MLCI_DEPLOY_BRANCH is 'main'")
        assert stepError('mlciPolicy', [submitter: '']).contains('names nobody beyond')
        assert stepError('mlciPolicy', [agentLabel: 'anything']).contains("MLCI_AGENT_LABEL is 'ml-test'")
        step('mlciPolicy', [deployBranch: 'main', submitter: 'ml-leads', agentLabel: 'ml-test'])
    }

    @Test
    void 'a build parameter named after a policy variable is refused even when it repeats the value'() {
        envVars.MLCI_DEPLOY_BRANCH = 'main'
        params.MLCI_DEPLOY_BRANCH = 'main'

        assert stepError('mlciPolicy').contains('the build parameter MLCI_DEPLOY_BRANCH is refused')
    }

    @Test
    void 'a build parameter cannot turn the tests sandbox off'() {
        params.MLCI_TEST_SANDBOX = 'off'

        assert stepError('mlciPolicy').contains('the build parameter MLCI_TEST_SANDBOX is refused')
    }
}
