/**
 * mlciPolicy: checks what a Jenkinsfile passes to mlciPipeline (CONFIG) and the build's parameters
 * against the administrator's release policy, and fails the build before anything runs when they
 * widen it. The policy is the administrator's folder or global environment: no build parameter may
 * set MLCI_DEPLOY_BRANCH, MLCI_APPROVERS, MLCI_CONFIG, MLCI_LOCK_NAMESPACE,
 * MLCI_TRUST_FORK_PULL_REQUESTS, MLCI_AGENT_LABEL, MLCI_DEPLOY_AGENT_LABEL or MLCI_TEST_SANDBOX (whoever starts a build,
 * or a branch declaring parameters, would choose them); where the administrator set one, the
 * Jenkinsfile may repeat it or, for the approvers, name a subset. Used by mlciPipeline.
 *
 * Parameters: the map a Jenkinsfile gives mlciPipeline (deployBranch, submitter,
 * trustForkPullRequests, agentLabel, deployAgentLabel are checked).
 *
 * Returns nothing; fails the build naming the setting and the administrator's value.
 *
 * Example:
 *   mlciPolicy(deployBranch: 'main', submitter: 'ml-leads')
 */
def call(Map config = [:]) {
    // The release policy's variables: the administrator's (folder or global environment), never a build's.
    List<String> policy = ['MLCI_DEPLOY_BRANCH', 'MLCI_APPROVERS', 'MLCI_CONFIG', 'MLCI_LOCK_NAMESPACE',
                           'MLCI_TRUST_FORK_PULL_REQUESTS', 'MLCI_AGENT_LABEL', 'MLCI_DEPLOY_AGENT_LABEL',
                           'MLCI_TEST_SANDBOX']
    for (String name : policy) {
        if (params.containsKey(name)) {
            error("mlciPipeline: the build parameter ${name} is refused: it is part of the release policy, which " +
                'only the administrator sets (a folder or global environment variable); remove the parameter')
        }
    }
    String problem = policyProblem(config, env.MLCI_DEPLOY_BRANCH as String, env.MLCI_APPROVERS as String,
        env.MLCI_TRUST_FORK_PULL_REQUESTS as String, env.MLCI_AGENT_LABEL as String,
        env.MLCI_DEPLOY_AGENT_LABEL as String)
    if (problem) {
        error("mlciPipeline: ${problem}")
    }
}

/** Why CONFIG (a Jenkinsfile's parameters) widens the administrator's policy, or null. */
@NonCPS
String policyProblem(Map config, String deployBranch, String approvers, String trustForks, String agentLabel,
                     String deployAgentLabel) {
    if (deployBranch && config.deployBranch != null && config.deployBranch != deployBranch) {
        return "this Jenkinsfile sets deployBranch '${config.deployBranch}', but the administrator's " +
            "MLCI_DEPLOY_BRANCH is '${deployBranch}': a Jenkinsfile cannot choose which branch deploys"
    }
    if (agentLabel && config.agentLabel != null && config.agentLabel != agentLabel) {
        return "this Jenkinsfile sets agentLabel '${config.agentLabel}', but the administrator's MLCI_AGENT_LABEL " +
            "is '${agentLabel}': a Jenkinsfile cannot choose where its tests run"
    }
    if (deployAgentLabel && config.deployAgentLabel != null && config.deployAgentLabel != deployAgentLabel) {
        return "this Jenkinsfile sets deployAgentLabel '${config.deployAgentLabel}', but the administrator's " +
            "MLCI_DEPLOY_AGENT_LABEL is '${deployAgentLabel}': a Jenkinsfile cannot choose where deploys run"
    }
    if (deployAgentLabel && config.agentLabel == deployAgentLabel) {
        return "this Jenkinsfile runs its tests on the deploy agents ('${deployAgentLabel}'): tests run on the " +
            'test agents only'
    }
    if (approvers && config.submitter != null) {
        List<String> allowed = approvers.tokenize(',')*.trim()
        List<String> asked = config.submitter.toString().tokenize(',')*.trim()
        List<String> extra = asked.findAll { String who -> !allowed.contains(who) }
        if (extra || !asked) {
            return "this Jenkinsfile sets submitter '${config.submitter}', which names ${extra ?: 'nobody'} beyond " +
                "the administrator's approvers (MLCI_APPROVERS: ${approvers}): a Jenkinsfile may only narrow them"
        }
    }
    if (config.trustForkPullRequests && trustForks != 'true') {
        return 'this Jenkinsfile sets trustForkPullRequests, but the administrator has not ' +
            '(MLCI_TRUST_FORK_PULL_REQUESTS): fork pull requests stay untrusted'
    }
    return null
}
