/**
 * mlciPipeline: the whole mlci assembly line as one step, for a one-line Jenkinsfile:
 *   @Library('mlci@v0.2.0') _
 *   mlciPipeline()
 *
 * Same stages, in the same order, as this repository's declarative Jenkinsfile: Setup, Test,
 * Train, Gate, Build images, Deploy staging, Approve, Deploy production. It costs nothing while
 * it waits: each group of stages takes its own node (a fresh checkout, the mlci tool, the
 * reports of earlier stages by unstash) and gives it back; the approval runs on no node.
 * The staging lock is held from Deploy staging to the end of Approve, so newer builds queue at it
 * while one is being approved (when it is freed the newest waiting build goes first); the
 * production lock is held around Deploy production; milestones stop an older build a newer one
 * overtook. Branches other than the deploy branch, and pull requests, stop after Gate; pull
 * requests from forks run Test only unless trustForkPullRequests. Aborts propagate: an aborted
 * or timed-out approval ends the build ABORTED with nothing deployed.
 *
 * Parameters (defaults in brackets):
 *   agentLabel             label of the agents that run Setup, Test, Train and Gate (Docker, Python
 *                          3.11) [env.MLCI_AGENT_LABEL or 'docker && python3.11']
 *   deployAgentLabel       label of the agents that build images and deploy, where the deploy
 *                          credentials are bound (mlciSshCredentials, registry credentials); no
 *                          branch's tests run there [env.MLCI_DEPLOY_AGENT_LABEL, else agentLabel with
 *                          a warning]. Where the administrator set either label, the Jenkinsfile
 *                          cannot change it
 *   deployBranch           the only branch that deploys [env.MLCI_DEPLOY_BRANCH or main]; where the
 *                          administrator set MLCI_DEPLOY_BRANCH, another value is refused
 *   submitter              who may approve production [env.MLCI_APPROVERS or mlci-approvers]; where
 *                          the administrator set MLCI_APPROVERS, only a subset of it (narrowing).
 *                          Jenkins administrators can approve whatever this says (the input step's rule)
 *   approvalHours          how long the approval waits [24] (timeoutHours is accepted too)
 *   timeouts               minutes per stage, merged with the defaults
 *                          [setup: 20, test: 30, train: 60, gate: 15, build: 45, deploy: 30];
 *                          candidate: the Setup-to-Gate group INCLUDING the wait for its agent
 *                          [setup + test + train + gate]. Build images and the deploys count
 *                          the wait for their agent in their own timeout.
 *   stagingEnv             [staging]
 *   productionEnv          [production]
 *   trustForkPullRequests  fork pull requests train and gate, with the MLflow credentials
 *                          [env.MLCI_TRUST_FORK_PULL_REQUESTS == 'true'; true is refused unless it is]
 *   config                 the mlci config file [env.MLCI_CONFIG or mlci.yaml]
 *   jobProperties          set the job's properties: build discarder (buildsToKeep [30] builds,
 *                          the artifacts of artifactsToKeep [10]), and on pull requests and other
 *                          branches than deployBranch abort the running build when a newer one
 *                          starts; the log is timestamped (Timestamper) [true]
 * None of the MLCI_* policy variables may be a build parameter (the build is refused): they are the
 * administrator's folder or global environment, which a build or a branch cannot set.
 *   shadow                 false: never show the shadow report [on when mlci.yaml's productionEnv
 *                          has shadow.env == stagingEnv: the approval message shows its summary and
 *                          the approver may refresh it; each fetch takes an agent for a moment]
 *   plus the keys of mlciSetup (source, indexUrl, extraIndexUrl, findLinks, python, venvCache),
 *   of mlciCommand (mlflowTrackingUri, mlflowCredentialsId), registryCredentialsId (mlciBuild) and
 *   registryPullCredentialsId (mlciDeploy)
 *
 * Returns a map: gate (mlciGate's summary, null when Gate did not run), deployed (the production
 * deploy report or null), approver (or null).
 *
 * Example:
 *   mlciPipeline(agentLabel: 'ml-docker', indexUrl: 'https://pypi.example.com/simple', approvalHours: 8)
 */
def call(Map config = [:]) {
    // The administrator's release policy first: nothing runs if the Jenkinsfile or a build widens it.
    mlciPolicy(config)
    Map c = [
        agentLabel: env.MLCI_AGENT_LABEL ?: 'docker && python3.11',
        deployAgentLabel: env.MLCI_DEPLOY_AGENT_LABEL ?: '',
        deployBranch: env.MLCI_DEPLOY_BRANCH ?: 'main',
        submitter: env.MLCI_APPROVERS ?: 'mlci-approvers',
        approvalHours: config.timeoutHours ?: 24,
        stagingEnv: 'staging',
        productionEnv: 'production',
        trustForkPullRequests: env.MLCI_TRUST_FORK_PULL_REQUESTS == 'true',
        config: env.MLCI_CONFIG ?: 'mlci.yaml',
        jobProperties: true,
        buildsToKeep: 30,
        artifactsToKeep: 10,
    ] + config
    c.timeouts = [setup: 20, test: 30, train: 60, gate: 15, build: 45, deploy: 30] + (config.timeouts ?: [:])
    if (c.timeouts.candidate == null) {
        c.timeouts.candidate = ['setup', 'test', 'train', 'gate'].sum { String key -> c.timeouts[key] as int }
    }
    if (!c.deployAgentLabel) {
        c.deployAgentLabel = c.agentLabel
        echo("mlciPipeline: Build images and the deploys run on the test agents (${c.agentLabel}): any branch's " +
            'test code runs on the agents where deploy credentials are bound. Set MLCI_DEPLOY_AGENT_LABEL to ' +
            'agents that run deploys only (docs/jenkins.md, "Deploy agents").')
    }
    if (c.jobProperties) {
        properties(jobProperties(c))
    }
    Map result = [gate: null, deployed: null, approver: null]
    // The last stage entered and whether Deploy production started: what ops read if the build ends badly.
    c.progress = [stage: '', production: false]
    try {
        timestamps {
            line(c, result)
        }
    } catch (InterruptedException stopped) {
        // Aborted, timed out or superseded: the same words as the root Jenkinsfile's `post` (mlciBuildEnd).
        mlciBuildEnd(result: 'STOPPED', stage: c.progress.stage, productionStarted: c.progress.production,
            env: c.productionEnv)
        throw stopped
    } catch (Exception failed) {
        mlciBuildEnd(result: 'FAILURE', stage: c.progress.stage, productionStarted: c.progress.production,
            env: c.productionEnv)
        throw failed
    }
    return result
}

/** The stages: the candidate (Setup to Gate), then on the deploy branch the release. */
void line(Map c, Map result) {
    String project = candidate(c, result)
    if (env.BRANCH_NAME != c.deployBranch || env.CHANGE_ID || result.gate == null) {
        if (result.gate != null) {
            echo("Stopping after Gate: only ${c.deployBranch} deploys (this is not it, or a pull request).")
        }
        return
    }
    release(c, project, result)
}

/**
 * The job's properties, set by the build (a one-line Jenkinsfile has no `options`): keep 30 builds
 * and the artifacts of 10 (every stage archives reports/**), and on pull requests and branches that
 * do not deploy, abort the running build when a newer one starts (the deploy branch keeps its
 * builds: milestones and locks order them, and one may be waiting for its approval).
 */
List jobProperties(Map c) {
    List props = [buildDiscarder(logRotator(numToKeepStr: c.buildsToKeep as String,
        artifactNumToKeepStr: c.artifactsToKeep as String))]
    if (env.CHANGE_ID || env.BRANCH_NAME != c.deployBranch) {
        props << disableConcurrentBuilds(abortPrevious: true)
    }
    return props
}

/** Notes the stage the build entered, for mlciBuildEnd's message. */
void entered(Map c, String stageName) {
    c.progress.stage = stageName
}

/** Setup, Test, Train, Gate on one node; returns the project of mlci.yaml and puts the gate summary in RESULT. */
String candidate(Map c, Map result) {
    boolean trains = !(env.CHANGE_ID && env.CHANGE_FORK) || c.trustForkPullRequests
    String project = ''
    // The group's timeout is outside the node: it counts the wait for an agent too.
    limit(c, 'candidate') {
        onAgent(c, c.agentLabel) {
            stage('Setup') {
                entered(c, 'Setup')
                limit(c, 'setup') {
                    prepare(c, [])
                    // Lock names are mlci/<folder>/<project>/<env> (mlciLockName), the project of mlci.yaml.
                    Map yaml = readYaml(file: c.config) ?: [:]
                    project = yaml.project ?: ''
                    // The approver sees the shadow report when production mirrors its traffic to staging.
                    c.shadowed = c.shadow != false && shadowTarget(yaml, c.productionEnv) == c.stagingEnv
                    if (!project) {
                        error("mlciPipeline: ${c.config} has no 'project'; the lock names need it.")
                    }
                }
            }
            stage('Test') {
                entered(c, 'Test')
                limit(c, 'test') {
                    mlciTest(c)
                }
            }
            if (trains) {
                Map trained = null
                stage('Train') {
                    entered(c, 'Train')
                    limit(c, 'train') {
                        trained = mlciTrain(c)
                    }
                }
                stage('Gate') {
                    entered(c, 'Gate')
                    limit(c, 'gate') {
                        // Blocking on branches; a pull request shows its comparison (UNSTABLE if it fails).
                        result.gate = mlciGate(c + [failOnGateFailure: !env.CHANGE_ID, run: trained])
                        stash(name: 'mlci-candidate', includes: 'reports/train.json,reports/gate.json,reports/gate-table.txt')
                    }
                }
            } else {
                echo("Stopping after Test: this pull request comes from the fork '${env.CHANGE_FORK}'; its code does " +
                    'not train against MLflow (trustForkPullRequests: true to change that).')
            }
        }
    }
    return project
}

/** Build images, Deploy staging + Approve under the staging lock, Deploy production under its lock. */
void release(Map c, String project, Map result) {
    String version = result.gate.version
    stage('Build images') {
        entered(c, 'Build images')
        limit(c, 'build') {
            // Builds pass in order: an older build that a newer one overtook stops here (NOT_BUILT).
            milestone(ordinal: 10, label: 'Build images')
            onAgent(c, c.deployAgentLabel) {
                prepare(c, ['mlci-candidate'])
                mlciBuild(c + [version: version])
                stash(name: 'mlci-images', includes: 'reports/build.json')
            }
        }
    }
    // Held from the staging deploy to the end of the approval: no other build replaces what is
    // being approved (newer builds queue here); when it is freed the newest waiting build goes
    // next and its milestone stops the older ones.
    lock(resource: mlciLockName(project: project, env: c.stagingEnv), inversePrecedence: true) {
        String stagingUrl = ''
        stage('Deploy staging') {
            entered(c, 'Deploy staging')
            limit(c, 'deploy') {
                milestone(ordinal: 20, label: 'Deploy staging')
                onAgent(c, c.deployAgentLabel) {
                    prepare(c, ['mlci-candidate', 'mlci-images'])
                    Map staging = mlciDeploy(c + [env: c.stagingEnv, version: version, lock: false])
                    stagingUrl = staging.current?.url ?: ''
                }
            }
        }
        stage('Approve') {
            entered(c, 'Approve')
            // On no node: the wait holds no executor. Abort or timeout: the interruption propagates.
            // The shadow closure takes an agent only before each question (at the start, on a refresh).
            Closure shadow = c.shadowed ? { -> shadowReport(c) } : null
            result.approver = mlciApprove(gate: result.gate, env: c.productionEnv, submitter: c.submitter,
                timeoutHours: c.approvalHours as int, stagingUrl: stagingUrl, shadow: shadow)
            milestone(ordinal: 30, label: 'Approved')
        }
    }
    stage('Deploy production') {
        entered(c, 'Deploy production')
        lock(resource: mlciLockName(project: project, env: c.productionEnv)) {
            limit(c, 'deploy') {
                // Inside the production lock: an older approved build never deploys over a newer one.
                milestone(ordinal: 40, label: 'Deploy production')
                onAgent(c, c.deployAgentLabel) {
                    prepare(c, ['mlci-candidate', 'mlci-images'])
                    c.progress.production = true
                    result.deployed = mlciDeploy(c + [env: c.productionEnv, version: version,
                        approver: result.approver, lock: false])
                }
            }
        }
        Map current = result.deployed?.current ?: [:]
        // Plain text on one line (Jenkins' default markup formatter); report values are untrusted.
        currentBuild.description = ("${currentBuild.description ?: ''} | ${c.productionEnv}: v${current.model_version} " +
            "(${current.colour}), approved by ${result.approver}").replaceAll('[\\s\\p{Cntrl}]+', ' ')
    }
}

/** The shadow report of the staging environment, fetched on an agent taken for a moment (then given back). */
Map shadowReport(Map c) {
    Map report = null
    onAgent(c, c.deployAgentLabel) {
        prepare(c, [])
        report = mlciShadowReport(c + [env: c.stagingEnv])
    }
    return report
}

/** The environment ENV_NAME mirrors its traffic to (environments.<env>.shadow.env of mlci.yaml), or null. */
@NonCPS
String shadowTarget(Map yaml, Object envName) {
    Object environments = yaml.environments
    Object environment = environments instanceof Map ? environments[envName] : null
    Object shadow = environment instanceof Map ? environment.shadow : null
    return shadow instanceof Map && shadow.env ? shadow.env.toString() : null
}

/**
 * Runs BODY on a node of LABEL; its reports are archived whatever happens, before the node
 * is given back. Archiving cannot hide BODY's failure (a lost agent, a timeout): mlciCleanup.
 */
void onAgent(Map c, String label, Closure body) {
    node(label) {
        mlciCleanup(what: 'archiving the reports', cleanup: { mlciPublish(junit: '', coverage: '') }) {
            body()
        }
    }
}

/** Prepares a fresh workspace: checkout, the mlci tool (mlciSetup), then the reports stashed by earlier stages. */
void prepare(Map c, List<String> reports) {
    checkout(scm)
    mlciSetup(c)
    // After mlciSetup, which empties reports/: only this build's reports come back.
    for (String name : reports) {
        unstash(name)
    }
}

/** The timeout of KEY, in minutes, around BODY (around the node too where BODY takes one: it counts the wait). */
void limit(Map c, String stageKey, Closure body) {
    timeout(time: c.timeouts[stageKey] as int, unit: 'MINUTES') {
        body()
    }
}
