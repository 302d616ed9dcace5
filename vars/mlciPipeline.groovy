/**
 * mlciPipeline: the whole mlci assembly line as one step, for a one-line Jenkinsfile. Same
 * stages, in the same order, as the declarative Jenkinsfile of this repository: Setup, Test,
 * Train, Gate, Build images, Deploy staging, Approve, Deploy production. Branches other than the
 * deploy branch, and pull requests, stop after Gate. Reports are always archived and published.
 *
 * Parameters (defaults in brackets):
 *   agentLabel     label of the agents with Docker and Python 3.11 [any agent]
 *   deployBranch   the only branch that deploys [env.MLCI_DEPLOY_BRANCH or main]
 *   submitter      who may approve production [env.MLCI_APPROVERS or mlci-approvers]
 *   timeoutHours   approval timeout [24]
 *   stagingEnv     [staging]
 *   productionEnv  [production]
 *   plus the common keys of mlciCommand (mlci, config, mlflowTrackingUri, mlflowCredentialsId,
 *   registryCredentialsId) and of mlciSetup (python, lockFile, venvCache)
 *
 * Returns a map: gate (gate report), deployed (the production deploy report or null),
 * approver.
 *
 * Example (the whole Jenkinsfile):
 *   library identifier: "mlci@${env.BRANCH_NAME}", retriever: legacySCM(scm)
 *   mlciPipeline()
 */
def call(Map config = [:]) {
    Map c = [
        agentLabel: '',
        deployBranch: env.MLCI_DEPLOY_BRANCH ?: 'main',
        submitter: env.MLCI_APPROVERS ?: 'mlci-approvers',
        timeoutHours: 24,
        stagingEnv: 'staging',
        productionEnv: 'production',
    ] + config
    boolean deploys = env.BRANCH_NAME == c.deployBranch && !env.CHANGE_ID
    Map result = [gate: null, deployed: null, approver: null]

    node(c.agentLabel) {
        try {
            stage('Setup') {
                checkout(scm)
                mlciSetup(c)
            }
            stage('Test') {
                mlciTest(c + [publish: false])
            }
            stage('Train') {
                mlciTrain(c)
            }
            stage('Gate') {
                result.gate = mlciGate(c)
            }
            stage('Build images') {
                if (deploys) {
                    mlciBuild(c)
                } else {
                    echo("Stopping after Gate: only ${c.deployBranch} deploys (this is not it, or a pull request).")
                }
            }
            stage('Deploy staging') {
                if (deploys) {
                    mlciDeploy(c + [env: c.stagingEnv])
                }
            }
            stage('Approve') {
                if (deploys) {
                    result.approver = mlciApprove(c)
                }
            }
            stage('Deploy production') {
                if (deploys && result.approver) {
                    result.deployed = mlciDeploy(c + [env: c.productionEnv, approver: result.approver])
                    Map current = result.deployed.current ?: [:]
                    currentBuild.description = ("${currentBuild.description ?: ''}\nProduction: " +
                        "${result.gate?.model_name} v${current.model_version} (${current.colour}), " +
                        "approved by ${result.approver}").trim()
                }
            }
        } finally {
            mlciPublish()
        }
    }
    return result
}
