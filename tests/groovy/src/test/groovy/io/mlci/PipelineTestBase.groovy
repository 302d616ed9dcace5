package io.mlci

import hudson.model.Result
import hudson.remoting.ChannelClosedException
import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException
import org.jenkinsci.plugins.workflow.steps.MissingContextVariableException
import org.jenkinsci.plugins.workflow.steps.TimeoutStepExecution
import org.jenkinsci.plugins.workflow.support.steps.input.Rejection
import org.junit.Before

/**
 * Base of the tests that run a whole pipeline (the root Jenkinsfile, mlciPipeline, a consumer's
 * Jenkinsfile). On top of LibraryTestBase's fakes it models what a controller does between stages:
 *
 *   nodes       each `node` (or declarative stage agent) gets a NEW empty workspace; outside any
 *               node there is no workspace at all (reading or writing a file, or `sh`, is a test
 *               failure, as Jenkins' "Required context class hudson.FilePath is missing").
 *   checkout    copies the repository's files (every given file not under reports/) into the
 *               workspace; declarative stage agents do it implicitly, as Jenkins does.
 *   mlci        each `mlci <command>` writes its report(s) into the current workspace (the given
 *               reports/... files are what it writes), so a report a stage did not produce or
 *               unstash is missing there, exactly as on a controller with several agents.
 *   stash       stash/unstash copy files between workspaces; unstashing an unknown name fails.
 *   milestone   ordinals must increase within a build (auto = last + 1); passing one, and the end
 *               of the build, go through the shared Controller (the Milestone Step plugin's rules:
 *               older builds cancelled, or this one if a newer build passed first).
 *   lock        the Controller's controller-wide lockable resources: a lock another build holds
 *               makes this build wait while the test's `meanwhile` closures run (other builds
 *               progressing); cancelled while it waits, it ends NOT_BUILT.
 *   input       inside a node it is a test failure (an executor would be held for hours). While it
 *               waits for its human, the `duringApproval` closures run: a build cancelled meanwhile
 *               ends NOT_BUILT there, as the plugin interrupts it.
 *   timeout     `expireTimeouts = true` makes the innermost timeout fire when input waits in it:
 *               the clock advances by the timeout, and input ends with Rejection by SYSTEM, as the
 *               real input step does when a timeout stops it. `hang()` (from an onCommand hook)
 *               makes a step hang until the innermost timeout fires (ExceededTimeout, ABORTED);
 *               with no timeout around it, that is a test failure (the build would hang forever).
 *   lost agent  `loseAgent()` (from an onCommand hook) takes the current node's agent offline: the
 *               running step fails with ChannelClosedException, and every later step that needs
 *               its workspace (sh, files, archiving) with MissingContextVariableException, as
 *               Jenkins does; the enclosing `finally` blocks still run (on the controller).
 */
abstract class PipelineTestBase extends LibraryTestBase {

    /** Workspace of code that runs outside any node: every access is an error. */
    static final Map<String, Object> NO_WORKSPACE = new NoWorkspace()

    Map<String, Object> repository = [:]
    Map<String, Object> produced = [:]
    Map<String, Map<String, Object>> stashes = [:]
    List<String> nodeStack = []
    List<Map<String, Object>> workspaceStack = []
    int workspaces = 0
    List<String> violations = []
    List<Integer> milestones = []
    boolean expireTimeouts = false
    List<Map> timeoutStack = []
    List<Map> lockCalls = []
    List<List<String>> nodesAtInput = []
    /** How many timeouts enclosed each `node` when it was asked for (0: the wait for an agent is unbounded). */
    List<Integer> timeoutsAtNode = []
    boolean started = false
    /** What the build set with the `properties` step (null: never called). */
    List jobProperties = null

    @Before
    void registerControllerFakes() {
        helper.registerAllowedMethod('node', [Object, Closure], { Object label, Closure body -> onNode(label?.toString(), body) })
        helper.registerAllowedMethod('node', [Closure], { Closure body -> onNode(null, body) })
        helper.registerAllowedMethod('checkout', [Object], { Object scm -> checkoutScm() })
        helper.registerAllowedMethod('stash', [Map], { Map args -> stash(args) })
        helper.registerAllowedMethod('unstash', [String], { String name -> unstash(name) })
        helper.registerAllowedMethod('unstash', [Map], { Map args -> unstash(args.name as String) })
        helper.registerAllowedMethod('milestone', [Map], { Map args -> milestone(args.ordinal as Integer, args.label as String) })
        helper.registerAllowedMethod('milestone', [Integer], { Integer ordinal -> milestone(ordinal, null) })
        helper.registerAllowedMethod('milestone', [], { -> milestone(null, null) })
        helper.registerAllowedMethod('input', [Map], { Map args -> onInput(args) })
        helper.registerAllowedMethod('timeout', [Map, Closure], { Map args, Closure body -> onTimeout(args, body) })
        helper.registerAllowedMethod('lock', [Map, Closure], { Map args, Closure body ->
            lockCalls << args
            return holdLock(args.resource as String, body, args.inversePrecedence as boolean)
        })
        helper.registerAllowedMethod('library', [String], { String name -> events << "library:${name}".toString() })
        // Job properties as the core `properties` step takes them: what the build asks is recorded.
        helper.registerAllowedMethod('properties', [List], { List props ->
            jobProperties = props
            events << "properties:${props*.name.join(',')}".toString()
        })
        helper.registerAllowedMethod('buildDiscarder', [Object], { Object strategy -> [name: 'buildDiscarder', strategy: strategy] })
        helper.registerAllowedMethod('logRotator', [Map], { Map args -> [name: 'logRotator'] + args })
        helper.registerAllowedMethod('disableConcurrentBuilds', [Map], { Map args -> [name: 'disableConcurrentBuilds'] + args })
        helper.registerAllowedMethod('timestamps', [Closure], { Closure body ->
            events << 'timestamps'
            return body.call()
        })
        helper.registerAllowedMethod('archiveArtifacts', [Map], { Map args ->
            requireNode('archiveArtifacts')
            archives << args
            events << "archive:${args.artifacts}".toString()
        })
    }

    // ---- what a controller does to a running step --------------------------------------------

    /** The current node's agent goes offline now: the running step fails, its workspace is gone. */
    void loseAgent() {
        String node = nodeStack ? nodeStack.last() : 'none'
        events << "agent-lost:${node}".toString()
        files = new LostWorkspace()
        throw new ChannelClosedException("Channel \"hudson.remoting.Channel@1:agent-${node}\": Remote call on " +
            "agent-${node} failed. The channel is closing down or has closed down".toString())
    }

    /** The agent goes offline without the step noticing: it hangs until its timeout fires. */
    void loseAgentSilently() {
        events << "agent-lost:${nodeStack ? nodeStack.last() : 'none'}".toString()
        files = new LostWorkspace()
        hang()
    }

    /** The running step hangs: the innermost timeout fires (ExceededTimeout, ABORTED), or the test fails. */
    void hang() {
        if (timeoutStack.isEmpty()) {
            violation('a step hung with no timeout around it: the build would hang until someone aborts it')
        }
        Map expired = timeoutStack.last()
        events << "timeout-expired:${expired.time} ${expired.unit}".toString()
        clockMillis += millis(expired)
        throw new FlowInterruptedException(Result.ABORTED, new TimeoutStepExecution.ExceededTimeout())
    }

    // ---- the other builds on the controller -------------------------------------------------

    /** Build NUMBER of this job (or of JOB), started on the controller. */
    Controller.Build otherBuild(int number, String job = null) {
        return controller.build(job ?: envVars.JOB_NAME as String, number)
    }

    /** While this build waits at a lock, the controller's other builds do STEP next. */
    void meanwhile(Closure step) {
        controller.elsewhere << step
    }

    /** While this build waits at an input (hours, for a human), the controller's other builds do STEP. */
    void duringApproval(Closure step) {
        controller.duringInput << step
    }

    /**
     * The line's usual race: build #6 holds the staging lock, waiting for its approval; this build
     * (#7) passes Build images and queues behind it; meanwhile build #8 passes Build images and
     * queues too. Returns [older, newer].
     */
    List<Controller.Build> givenOlderBuildAtApprovalAndNewerQueued(String stagingLock) {
        Controller.Build older = otherBuild(6)
        controller.pass(older, 10)
        controller.acquire(older, stagingLock, true)
        controller.pass(older, 20)
        Controller.Build newer = otherBuild(8)
        meanwhile { ->
            controller.pass(newer, 10)
            controller.acquire(newer, stagingLock, true)
        }
        return [older, newer]
    }

    /**
     * That race, on: #6 is approved and lets the staging lock go; the newest waiter (#8) gets it and
     * passes Deploy staging, which cancels this build, still waiting. Returns [older, newer].
     */
    List<Controller.Build> givenNewerBuildTakesTheStagingLockFirst(String stagingLock) {
        def (Controller.Build older, Controller.Build newer) = givenOlderBuildAtApprovalAndNewerQueued(stagingLock)
        meanwhile { ->
            controller.pass(older, 30)
            controller.release(older, stagingLock)
        }
        meanwhile { -> controller.pass(newer, 20) }
        return [older, newer]
    }

    // ---- running -----------------------------------------------------------------------------

    /**
     * Splits the given files into the repository (what `checkout` brings) and what mlci produces
     * (reports/...), then leaves the script with no workspace until it takes a node.
     */
    void startBuild() {
        if (started) {
            return
        }
        started = true
        files.each { String path, Object content ->
            if (path.startsWith('reports/')) {
                produced[path] = content
            } else {
                repository[path] = content
            }
        }
        files = NO_WORKSPACE
    }

    /** Runs the root Jenkinsfile through DeclarativeRun. */
    DeclarativeRun runJenkinsfile() {
        return runJenkinsfile('Jenkinsfile')
    }

    /** Runs a declarative Jenkinsfile (path relative to the repository root) through DeclarativeRun. */
    DeclarativeRun runJenkinsfile(String path) {
        startBuild()
        DeclarativeRun run = new DeclarativeRun(this)
        helper.registerAllowedMethod('pipeline', [Closure], { Closure body -> run.execute(body) })
        thisBuild()
        try {
            loadScript(path).run()
        } finally {
            endBuild()
        }
        return run
    }

    /**
     * Runs a scripted Jenkinsfile (path relative to the repository root, or absolute), e.g. a
     * consumer's one-line `@Library('mlci@vX') _` + `mlciPipeline()`: the build ends with the
     * result of an interruption, as on a controller.
     */
    Object runScriptedJenkinsfile(String path) {
        startBuild()
        thisBuild()
        try {
            return loadScript(path).run()
        } catch (FlowInterruptedException e) {
            build.result = e.result.toString()
            events << "interrupted:${e.result}".toString()
            return null
        } catch (Throwable e) {
            build.result = 'FAILURE'
            throw e
        } finally {
            endBuild()
        }
    }

    /** Runs a scripted pipeline step (mlciPipeline) as the only content of a Jenkinsfile. */
    Object runScripted(String name, Map config = null) {
        startBuild()
        thisBuild()
        try {
            return step(name, config)
        } catch (FlowInterruptedException e) {
            // Jenkins ends the build with the interruption's result (ABORTED, NOT_BUILT).
            build.result = e.result.toString()
            events << "interrupted:${e.result}".toString()
            return null
        } catch (Throwable e) {
            build.result = 'FAILURE'
            throw e
        } finally {
            endBuild()
        }
    }

    // ---- controller fakes --------------------------------------------------------------------

    Object onNode(String label, Closure body) {
        workspaces++
        timeoutsAtNode << timeoutStack.size()
        String name = "ws${workspaces}"
        events << "node:${label ?: ''}".toString()
        nodeStack << name
        workspaceStack << files
        files = new LinkedHashMap<String, Object>()
        try {
            return body.call()
        } finally {
            files = workspaceStack.remove(workspaceStack.size() - 1)
            nodeStack.remove(nodeStack.size() - 1)
            events << "endnode:${label ?: ''}".toString()
        }
    }

    /** Declarative stage agent: a node plus the implicit checkout. */
    Object onAgent(String label, Closure body) {
        return onNode(label, { ->
            checkoutScm()
            body.call()
        })
    }

    void checkoutScm() {
        requireNode('checkout')
        events << 'checkout'
        files.putAll(repository)
    }

    /** Once a whole pipeline runs (not when a test calls one step directly), a workspace needs a node. */
    void requireNode(String what) {
        if (files instanceof LostWorkspace) {
            events << "missing-workspace:${what}".toString()
            throw LostWorkspace.missing()
        }
        if (started && nodeStack.isEmpty()) {
            violation("${what} outside any node: Jenkins has no workspace there " +
                '(Required context class hudson.FilePath is missing)')
        }
    }

    void violation(String message) {
        violations << message
        throw new AssertionError((Object) message)
    }

    void stash(Map args) {
        requireNode('stash')
        String name = args.name as String
        List<String> patterns = (args.includes as String ?: '**').split(',')*.trim()
        Map<String, Object> saved = files.findAll { String path, Object v -> patterns.any { matches(path, it) } }
        if (saved.isEmpty() && !args.allowEmpty) {
            fail("stash '${name}': no files included (${args.includes})")
        }
        stashes[name] = new LinkedHashMap<String, Object>(saved)
        events << "stash:${name}:${saved.keySet().sort().join(',')}".toString()
    }

    void unstash(String name) {
        requireNode('unstash')
        if (!stashes.containsKey(name)) {
            fail("No such saved stash '${name}'")
        }
        files.putAll(stashes[name])
        events << "unstash:${name}".toString()
    }

    static boolean matches(String path, String glob) {
        String regex = glob.replace('.', '\\.').replace('**', '\u0000').replace('*', '[^/]*').replace('\u0000', '.*')
        return path ==~ regex
    }

    void milestone(Integer ordinal, String label) {
        int last = milestones ? milestones.last() : 0
        int actual = ordinal == null ? last + 1 : ordinal
        if (actual <= last) {
            violation("milestone ordinal ${actual} after ${last}: ordinals must increase within a build " +
                '(the Milestone Step plugin fails the build)')
        }
        milestones << actual
        events << "milestone:${actual}${label ? ':' + label : ''}".toString()
        Controller.Build me = thisBuild()
        controller.pass(me, actual)
        if (me.cancelledBy != null) {
            throw superseded(me)
        }
    }

    /** The build ends: the controller applies the plugins' end-of-build rules (milestones, locks). */
    void endBuild() {
        controller.complete(thisBuild(), (build.result ?: 'SUCCESS') as String)
    }

    Object onInput(Map args) {
        nodesAtInput << new ArrayList<String>(nodeStack)
        if (!nodeStack.isEmpty()) {
            violation("input inside node ${nodeStack}: the build would hold an executor while it waits for a human")
        }
        inputs << args
        events << 'input'
        // Hours may pass before a human answers: the other builds do what they do meanwhile.
        Controller.Build me = thisBuild()
        controller.waitUntil({ -> false }, controller.duringInput)
        if (me.cancelledBy != null) {
            throw superseded(me)
        }
        if (expireTimeouts && timeoutStack) {
            // As on a controller: the time passes, then the timeout stops the input step, which ends
            // as if SYSTEM had pressed Abort (Rejection by SYSTEM, result ABORTED), not with the
            // timeout's own ExceededTimeout cause.
            Map expired = timeoutStack.last()
            events << "timeout-expired:${expired.time} ${expired.unit}".toString()
            if (clockMillis != null) {
                clockMillis += millis(expired)
            }
            throw new FlowInterruptedException(Result.ABORTED, new Rejection('SYSTEM'))
        }
        return inputAnswer.call(args)
    }

    static long millis(Map timeoutArgs) {
        long time = timeoutArgs.time as long
        switch (timeoutArgs.unit ?: 'MINUTES') {
            case 'HOURS': return time * 3600_000L
            case 'MINUTES': return time * 60_000L
            case 'SECONDS': return time * 1000L
            default: throw new AssertionError((Object) "timeout unit ${timeoutArgs.unit} not modelled")
        }
    }

    Object onTimeout(Map args, Closure body) {
        timeouts << args
        events << "timeout:${args.time} ${args.unit}".toString()
        timeoutStack << args
        try {
            return body.call()
        } finally {
            timeoutStack.remove(timeoutStack.size() - 1)
        }
    }

    /** mlci writes its reports into the workspace it runs in; `sh` needs a node. */
    @Override
    int runSh(Map args) {
        requireNode("sh '${args.label ?: args.script}'")
        int status = super.runSh(args)
        ShCall call = shCalls.last()
        outputsOf(call).each { String path ->
            if (produced.containsKey(path)) {
                files[path] = produced[path]
            }
        }
        return status
    }

    static List<String> outputsOf(ShCall call) {
        switch (call.command) {
            case 'test': return ['reports/junit.xml', 'reports/coverage.xml']
            case 'train': return ['reports/train.json']
            case 'gate': return ['reports/gate.json']
            case 'build': return ['reports/build.json']
            case 'deploy':
            case 'rollback': return ["reports/deploy-${call.env.MLCI_ENV}.json".toString()]
            default: return []
        }
    }
}

/** The "workspace" outside any node: Jenkins has none, so any file access is a test failure. */
class NoWorkspace extends LinkedHashMap<String, Object> {

    private static AssertionError none(Object key) {
        return new AssertionError((Object) "file access outside any node (${key}): Jenkins has no workspace there".toString())
    }

    @Override
    Object get(Object key) {
        throw none(key)
    }

    @Override
    boolean containsKey(Object key) {
        throw none(key)
    }

    @Override
    Object put(String key, Object value) {
        throw none(key)
    }
}

/** The workspace of a node whose agent went offline: every access fails as on a controller. */
class LostWorkspace extends LinkedHashMap<String, Object> {

    static MissingContextVariableException missing() {
        return new MissingContextVariableException('hudson.FilePath')
    }

    @Override
    Object get(Object key) {
        throw missing()
    }

    @Override
    boolean containsKey(Object key) {
        throw missing()
    }

    @Override
    Object put(String key, Object value) {
        throw missing()
    }
}
