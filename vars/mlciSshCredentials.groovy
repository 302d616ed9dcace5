/**
 * mlciSshCredentials: runs its body with the SSH identity of the remote Docker hosts loaded in an
 * ssh-agent for this body only (SSH Agent plugin, `sshagent`): mlci's Docker client (paramiko)
 * takes the key from SSH_AUTH_SOCK. The key is a Jenkins credential (SSH Username with private
 * key), never a file on the agents: test code on any agent cannot read it, and it exists only while
 * a deploy, rollback or shadow report of a deploy agent runs. Used by mlciDeploy, mlciRollback and
 * mlciShadowReport; not meant for a Jenkinsfile.
 *
 * Parameters (defaults in brackets):
 *   credentialsId  the SSH credential of the Docker hosts; '' runs the body without one (local
 *                  engines, or hosts reached another way) [env.MLCI_SSH_CREDENTIALS_ID or '']
 *
 * Returns what the body returns.
 *
 * Example:
 *   int status = mlciSshCredentials(credentialsId: 'docker-hosts-ssh') { mlciCommand(run) } as int
 */
def call(Map config = [:], Closure body) {
    Map c = [credentialsId: env.MLCI_SSH_CREDENTIALS_ID ?: ''] + config
    if (!c.credentialsId) {
        return body()
    }
    return sshagent(credentials: [c.credentialsId as String]) {
        return body()
    }
}
