/**
 * mlciJobFolder: the team a build belongs to, for what must not be shared across teams on a shared
 * controller: the job's folder (JOB_NAME without the job, and without the branch for a multibranch
 * job), or MLCI_LOCK_NAMESPACE where the administrator sets it (a folder property). Lock names
 * (mlciLockName) and the agents' venv cache (mlciSetup) are kept apart by it. No parameter.
 *
 * Returns the folder ('team-a', 'org/team-c'), or '-' for a job at the top level.
 *
 * Example:
 *   echo "this build belongs to ${mlciJobFolder()}"
 */
def call(Map config = [:]) {
    return env.MLCI_LOCK_NAMESPACE ?: folderOf(env.JOB_NAME as String, env.BRANCH_NAME as String)
}

/** The folder of a job: 'team-a/iris/main' (multibranch) -> 'team-a'; a job at the top level -> '-'. */
@NonCPS
String folderOf(String jobName, String branchName) {
    List<String> parts = (jobName ?: '').tokenize('/')
    int drop = branchName ? 2 : 1
    List<String> folder = parts.size() > drop ? parts.subList(0, parts.size() - drop) : []
    return folder ? folder.join('/') : '-'
}
