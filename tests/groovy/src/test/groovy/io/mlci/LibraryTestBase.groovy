package io.mlci

import com.lesfurets.jenkins.unit.BasePipelineTest
import groovy.json.JsonOutput
import hudson.AbortException
import hudson.model.Result
import net.sf.json.JSON
import net.sf.json.JSONArray
import net.sf.json.JSONNull
import net.sf.json.JSONObject
import net.sf.json.JSONSerializer
import org.yaml.snakeyaml.LoaderOptions
import org.yaml.snakeyaml.Yaml
import org.yaml.snakeyaml.constructor.SafeConstructor
import org.jenkinsci.plugins.pipeline.milestone.CancelledCause
import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException
import org.junit.Before

/**
 * Shared base of the mlci library tests, on JenkinsPipelineUnit 1.1's BasePipelineTest.
 *
 * It loads the library's steps from ../../vars (each step is callable from any script under its
 * file name, as in Jenkins), and fakes the Jenkins steps they use. The fakes record what happened:
 *   shCalls   every `sh`: script text, environment (withEnv + withCredentials), locks held
 *   events    ordered log: 'stage:Gate', 'lock:mlci/ml/x/production', 'input', 'milestone:...', ...
 *   files     the fake workspace: path -> String or Map (a Map is served to readJSON as JSON)
 * readJSON parses with json-lib like Pipeline Utility Steps (JSONNull and all) and honours
 * returnPojo; readYaml parses with SnakeYAML like Pipeline Utility Steps.
 *   log       everything echoed
 * Given: set env, files, exit codes (exitCode('deploy', 1)) and the `input` answer.
 */
abstract class LibraryTestBase extends BasePipelineTest {

    static final File ROOT = findRoot()

    Map<String, Object> envVars
    Map<String, Object> build
    Map<String, Object> params
    List<ShCall> shCalls = []
    List<String> events = []
    List<String> log = []
    Map<String, Object> files = [:]
    Map<String, Integer> exitCodes = [:]
    Map<String, Closure> onCommand = [:]
    List<Map> inputs = []
    List<Map> timeouts = []
    List<Map> jsonReads = []
    List<String> dirStack = []
    List<Map> lockArgs = []
    List<Map> archives = []
    List<Map> coverages = []
    /**
     * The controller's clock; currentBuild.duration counts from BUILD_STARTED to it, as RunWrapper's
     * does for a running build. Tests advance it to model a wait.
     */
    static final long BUILD_STARTED = 1_767_225_600_000L
    Long clockMillis = BUILD_STARTED
    Set<String> locksHeld = new LinkedHashSet<String>()
    /** What this build shares with the controller's other builds: locks, milestones. */
    Controller controller = new Controller()
    Closure inputAnswer = { Map args -> 'alice' }
    Map<String, Script> loadedVars = [:]

    static File findRoot() {
        File dir = new File(System.getProperty('mlci.root', '../..')).canonicalFile
        assert new File(dir, 'vars').isDirectory(): "vars/ not found under ${dir}"
        return dir
    }

    @Before
    @Override
    void setUp() throws Exception {
        scriptRoots = [ROOT.path] as String[]
        scriptExtension = 'groovy'
        super.setUp()
        helper.allowedMethodCallbacks.clear()

        envVars = [
            JOB_NAME: 'ml/mlci/main', BRANCH_NAME: 'main', BUILD_NUMBER: '7',
            BUILD_URL: 'https://jenkins.example.com/job/ml/job/mlci/job/main/7/', WORKSPACE: '/ws',
        ]
        // currentBuild: a running build's duration counts up (RunWrapper.getDuration), nothing else is computed.
        build = new RunningBuild({ -> clockMillis - BUILD_STARTED })
        build.putAll([result: null, description: null, number: 7])
        params = [:]
        binding.setVariable('env', envVars)
        binding.setVariable('currentBuild', build)
        binding.setVariable('params', params)
        binding.setVariable('scm', [$class: 'GitSCM'])

        // The checkout's mlci.yaml: lock names (mlci-<project>-<env>) come from its project.
        givenFile('mlci.yaml', 'project: mlci\nmodel:\n  name: iris\n')

        registerJenkinsSteps()
        registerLibrarySteps()
    }

    // ---- given -------------------------------------------------------------------------------

    /** mlci SUBCOMMAND exits with CODE. */
    void exitCode(String subcommand, int code) {
        exitCodes[subcommand] = code
    }

    /** Put a JSON report (or any file) in the fake workspace. */
    void givenFile(String path, Object content) {
        files[path] = content
    }

    Map trainReport(Map overrides = [:]) {
        return [model_name: 'iris', version: '3', run_id: 'r123', metrics: [accuracy: 0.97],
                primary_metric: 'accuracy', commit: 'abc1234',
                data: [sha256: 'f' * 64, rows: 150, columns: 5]] + overrides
    }

    Map gateReport(Map overrides = [:]) {
        return [passed: true, model_name: 'iris', candidate: [version: '3', metrics: [accuracy: 0.97]],
                production: [version: '2', metrics: [accuracy: 0.95]], primary_metric: 'accuracy',
                reasons: [],
                table: 'metric    candidate v3  production v2\naccuracy  0.970         0.950'] + overrides
    }

    Map buildReport() {
        Map image = [tag: 'mlci-api:3-abc1234', id: 'sha256:1', size: 1000, digest: null]
        return [model_name: 'iris', version: '3', images: [api: image, dashboard: image, router: image],
                pushed: false]
    }

    Map deployReport(String env, Map current = [:]) {
        Map cur = [env: env, colour: 'green', model_version: '3', image: 'mlci-api:3-abc1234',
                   url: "http://localhost:8${env == 'production' ? 1 : 2}00".toString(),
                   deployed_at: '2026-01-01T00:00:00Z', deployed_by: 'jenkins', approver: 'alice',
                   build_url: envVars.BUILD_URL, result: 'success'] + current
        return [env: env, current: cur, records: [cur]]
    }

    /** All the reports a full pipeline reads. */
    void givenAllReports() {
        givenFile('reports/train.json', trainReport())
        givenFile('reports/gate.json', gateReport())
        givenFile('reports/build.json', buildReport())
        givenFile('reports/deploy-staging.json', deployReport('staging', [approver: null]))
        givenFile('reports/deploy-production.json', deployReport('production'))
        givenFile('reports/junit.xml', '<testsuite/>')
        givenFile('reports/coverage.xml', '<coverage/>')
    }

    // ---- when --------------------------------------------------------------------------------

    /** Calls the library step NAME as a pipeline would. */
    Object step(String name, Map config = null) {
        Script script = libraryVar(name)
        return config == null ? script.invokeMethod('call', [] as Object[]) : script.invokeMethod('call', [config] as Object[])
    }

    /** Runs the step and returns the message of the error it fails with. */
    String stepError(String name, Map config = [:]) {
        try {
            step(name, config)
        } catch (AbortException e) {
            return e.message
        }
        throw new AssertionError("${name} was expected to fail with error(...) but succeeded; events: ${events}")
    }

    /** Running a whole Jenkinsfile needs a controller's workspaces and stashes: PipelineTestBase does it. */
    DeclarativeRun runJenkinsfile() {
        throw new UnsupportedOperationException('extend PipelineTestBase to run a Jenkinsfile')
    }

    // ---- then --------------------------------------------------------------------------------

    List<ShCall> mlciCalls(String subcommand = null) {
        return shCalls.findAll { it.command != null && (subcommand == null || it.command == subcommand) }
    }

    ShCall onlyMlciCall(String subcommand) {
        List<ShCall> calls = mlciCalls(subcommand)
        assert calls.size() == 1: "expected one 'mlci ${subcommand}' call, got ${calls}"
        return calls[0]
    }

    List<String> mlciCommandOrder() {
        return mlciCalls()*.command
    }

    // ---- fakes -------------------------------------------------------------------------------

    Script libraryVar(String name) {
        if (!loadedVars.containsKey(name)) {
            assert new File(ROOT, "vars/${name}.groovy").isFile(): "no step vars/${name}.groovy"
            Script loaded = loadScript("vars/${name}.groovy")
            loadedVars[name] = loaded
        }
        return loadedVars[name]
    }

    void registerLibrarySteps() {
        new File(ROOT, 'vars').listFiles().findAll { it.name.endsWith('.groovy') }.each { File f ->
            String name = f.name - '.groovy'
            helper.registerAllowedMethod(name, [], { -> step(name) })
            helper.registerAllowedMethod(name, [Map], { Map config -> step(name, config) })
            helper.registerAllowedMethod(name, [Map, Closure], { Map config, Closure body ->
                libraryVar(name).invokeMethod('call', [config, body] as Object[])
            })
        }
    }

    void markUnstable(String message) {
        events << "unstable:${message}".toString()
        log << "WARNING: ${message}".toString()
        if (build.result == null || build.result == 'SUCCESS') {
            build.result = 'UNSTABLE'
        }
    }

    void fail(String message) {
        events << "error:${message}".toString()
        throw new AbortException(message)
    }

    int runSh(Map args) {
        Map<String, String> env = [:]
        envVars.each { k, v -> env[k as String] = v == null ? null : v.toString() }
        ShCall call = new ShCall(script: args.script as String, label: args.label as String, env: env,
            locks: new LinkedHashSet<String>(locksHeld))
        shCalls << call
        events << "sh:${call.command ?: call.label ?: 'script'}".toString()
        Closure hook = onCommand[call.command ?: call.label]
        if (hook != null) {
            hook(call)
        }
        return exitCodes.get(call.command ?: call.label, 0)
    }

    Object withEnvironment(Map<String, String> values, Closure body) {
        Map<String, Object> previous = [:]
        values.each { k, v ->
            previous[k] = envVars.containsKey(k) ? envVars[k] : null
            envVars[k] = v
        }
        try {
            return body.call()
        } finally {
            previous.each { k, v ->
                if (v == null) {
                    envVars.remove(k)
                } else {
                    envVars[k] = v
                }
            }
        }
    }

    void registerJenkinsSteps() {
        helper.registerAllowedMethod('sh', [Map], { Map args ->
            int status = runSh(args)
            if (args.returnStatus) {
                return status
            }
            if (status != 0) {
                fail("script returned exit code ${status}")
            }
            return args.returnStdout ? '' : null
        })
        helper.registerAllowedMethod('sh', [Object], { Object script ->
            int status = runSh([script: script.toString()])
            if (status != 0) {
                fail("script returned exit code ${status}")
            }
        })
        helper.registerAllowedMethod('withEnv', [List, Closure], { List entries, Closure body ->
            Map<String, String> values = [:]
            entries.each { Object e ->
                String s = e.toString()
                int eq = s.indexOf('=')
                assert eq > 0: "withEnv entry without '=': ${s}"
                values[s.substring(0, eq)] = s.substring(eq + 1)
            }
            events << "withEnv:${values.keySet().join(',')}".toString()
            return withEnvironment(values, body)
        })
        helper.registerAllowedMethod('usernamePassword', [Map], { Map args -> [kind: 'usernamePassword'] + args })
        helper.registerAllowedMethod('withCredentials', [List, Closure], { List bindings, Closure body ->
            Map<String, String> values = [:]
            bindings.each { Map b ->
                values[b.usernameVariable as String] = "user-of-${b.credentialsId}".toString()
                values[b.passwordVariable as String] = "secret-of-${b.credentialsId}".toString()
            }
            events << "withCredentials:${bindings*.credentialsId.join(',')}".toString()
            return withEnvironment(values, body)
        })
        // sshagent (SSH Agent plugin): the key is in an agent for the body only, reachable through SSH_AUTH_SOCK.
        helper.registerAllowedMethod('sshagent', [Map, Closure], { Map args, Closure body ->
            events << "sshagent:${args.credentials.join(',')}".toString()
            return withEnvironment([SSH_AUTH_SOCK: '/tmp/ssh-agent.mlci/agent.sock'], body)
        })
        helper.registerAllowedMethod('sshagent', [List, Closure], { List ids, Closure body ->
            events << "sshagent:${ids.join(',')}".toString()
            return withEnvironment([SSH_AUTH_SOCK: '/tmp/ssh-agent.mlci/agent.sock'], body)
        })
        helper.registerAllowedMethod('error', [Object], { Object message -> fail(message.toString()) })
        // unstable(message): marks the stage and the build UNSTABLE (never better a worse result).
        helper.registerAllowedMethod('unstable', [Object], { Object message -> markUnstable(message.toString()) })
        helper.registerAllowedMethod('unstable', [Map], { Map args -> markUnstable(args.message as String) })
        helper.registerAllowedMethod('pwd', [], { -> envVars.WORKSPACE as String })
        helper.registerAllowedMethod('pwd', [Map], { Map args ->
            return args.tmp ? "${envVars.WORKSPACE}@tmp".toString() : envVars.WORKSPACE as String
        })
        helper.registerAllowedMethod('dir', [String, Closure], { String path, Closure body ->
            dirStack << path
            try {
                return body.call()
            } finally {
                dirStack.remove(dirStack.size() - 1)
            }
        })
        helper.registerAllowedMethod('deleteDir', [], { ->
            String prefix = dirStack ? "${dirStack.join('/')}/".toString() : ''
            events << "deleteDir:${prefix ?: '.'}".toString()
            files.keySet().removeAll { String k -> k.startsWith(prefix) }
        })
        helper.registerAllowedMethod('echo', [Object], { Object message -> log << message.toString() })
        helper.registerAllowedMethod('libraryResource', [Object], { Object path ->
            File f = new File(ROOT, "resources/${path}")
            assert f.isFile(): "libraryResource: resources/${path} does not exist"
            events << "libraryResource:${path}".toString()
            return f.text
        })
        helper.registerAllowedMethod('writeFile', [Map], { Map args ->
            files[args.file as String] = args.text as String
            events << "writeFile:${args.file}".toString()
        })
        helper.registerAllowedMethod('readFile', [Object], { Object path -> readWorkspaceFile(path.toString()) })
        helper.registerAllowedMethod('fileExists', [Object], { Object path -> files.containsKey(path.toString()) })
        helper.registerAllowedMethod('readJSON', [Map], { Map args -> readJson(args) })
        helper.registerAllowedMethod('readYaml', [Map], { Map args -> readYaml(args) })
        helper.registerAllowedMethod('junit', [Map], { Map args -> events << "junit:${args.testResults}".toString() })
        helper.registerAllowedMethod('junit', [String], { String pattern -> events << "junit:${pattern}".toString() })
        helper.registerAllowedMethod('recordCoverage', [Map], { Map args ->
            coverages << args
            events << "recordCoverage:${args.tools[0].pattern}".toString()
        })
        helper.registerAllowedMethod('archiveArtifacts', [Map], { Map args ->
            archives << args
            events << "archive:${args.artifacts}".toString()
        })
        helper.registerAllowedMethod('archiveArtifacts', [String], { String pattern -> events << "archive:${pattern}".toString() })
        helper.registerAllowedMethod('lock', [Map, Closure], { Map args, Closure body ->
            lockArgs << args
            holdLock(args.resource as String, body, args.inversePrecedence as boolean)
        })
        helper.registerAllowedMethod('lock', [String, Closure], { String resource, Closure body -> holdLock(resource, body) })
        helper.registerAllowedMethod('milestone', [Map], { Map args -> events << "milestone:${args.label}".toString() })
        helper.registerAllowedMethod('milestone', [], { -> events << 'milestone' })
        helper.registerAllowedMethod('timeout', [Map, Closure], { Map args, Closure body ->
            timeouts << args
            events << "timeout:${args.time} ${args.unit}".toString()
            return body.call()
        })
        // The choice parameter symbol (input parameters): a map of what it was given.
        helper.registerAllowedMethod('choice', [Map], { Map args -> [parameter: 'choice'] + args })
        helper.registerAllowedMethod('input', [Map], { Map args ->
            inputs << args
            events << 'input'
            return inputAnswer.call(args)
        })
        helper.registerAllowedMethod('stage', [String, Closure], { String name, Closure body ->
            events << "stage:${name}".toString()
            return body.call()
        })
        helper.registerAllowedMethod('node', [Object, Closure], { Object label, Closure body ->
            events << "node:${label}".toString()
            return body.call()
        })
        helper.registerAllowedMethod('node', [Closure], { Closure body -> events << 'node'; return body.call() })
        helper.registerAllowedMethod('checkout', [Object], { Object scm -> events << 'checkout' })
        helper.registerAllowedMethod('script', [Closure], { Closure body -> return body.call() })
        helper.registerAllowedMethod('legacySCM', [Object], { Object scm -> [retriever: 'legacySCM', scm: scm] })
        helper.registerAllowedMethod('library', [Map], { Map args -> events << "library:${args.identifier}".toString() })
    }

    /**
     * readJSON as Pipeline Utility Steps does it: json-lib parses the text (JSON null becomes
     * net.sf.json.JSONNull, which Groovy treats as true and which has no properties); with
     * returnPojo: true the result is turned into plain LinkedHashMap/ArrayList with Java null.
     */
    Object readJson(Map args) {
        assert (args.file == null) != (args.text == null): "readJSON: give exactly one of file and text, got ${args}"
        String text
        if (args.text != null) {
            text = args.text as String
        } else {
            Object content = readWorkspaceFile(args.file as String)
            text = content instanceof String ? content : JsonOutput.toJson(content)
        }
        jsonReads << args
        JSON json = JSONSerializer.toJSON(text)
        return args.returnPojo ? toPojo(json) : json
    }

    /** PUS' ReadJSONStepExecution.transformToJavaLangStructures. */
    static Object toPojo(Object value) {
        if (value == null || value instanceof JSONNull) {
            return null
        }
        if (value instanceof JSONObject) {
            Map<String, Object> map = new LinkedHashMap<String, Object>()
            ((JSONObject) value).keySet().each { Object k -> map[k as String] = toPojo(((JSONObject) value).get(k)) }
            return map
        }
        if (value instanceof JSONArray) {
            List<Object> list = new ArrayList<Object>()
            ((JSONArray) value).each { Object v -> list << toPojo(v) }
            return list
        }
        return value
    }

    /**
     * readYaml as Pipeline Utility Steps does it: SnakeYAML with a SafeConstructor; one document
     * gives that document, several give a list of them.
     */
    Object readYaml(Map args) {
        assert (args.file == null) != (args.text == null): "readYaml: give exactly one of file and text, got ${args}"
        String text = args.text != null ? args.text as String : readWorkspaceFile(args.file as String) as String
        List<Object> docs = new Yaml(new SafeConstructor(new LoaderOptions())).loadAll(text).collect { it }
        return docs.size() == 1 ? docs[0] : docs
    }

    Object readWorkspaceFile(String path) {
        if (!files.containsKey(path)) {
            fail("${path} does not exist in the workspace")
        }
        return files[path]
    }

    /**
     * The `lock` step on the shared Controller: a resource another build holds makes this build wait
     * (the other builds progress through controller.elsewhere meanwhile); cancelled while it waits,
     * it leaves the queue and ends NOT_BUILT; with nothing left to free the resource, the build would
     * wait forever, which is a test failure. The lock is released when the body ends, however.
     */
    Object holdLock(String resource, Closure body, boolean inversePrecedence = false) {
        Controller.Build me = thisBuild()
        if (!controller.acquire(me, resource, inversePrecedence)) {
            events << "lock-wait:${resource}".toString()
            boolean freed = controller.waitUntil { -> controller.holds(me, resource) }
            if (me.cancelledBy != null) {
                controller.leaveQueues(me)
                throw superseded(me)
            }
            if (!freed) {
                throw new AssertionError((Object) ("${me} would wait forever at lock ${resource}, held by " +
                    "${controller.owners[resource]}").toString())
            }
        }
        events << "lock:${resource}".toString()
        locksHeld << resource
        try {
            return body.call()
        } finally {
            locksHeld.remove(resource)
            controller.release(me, resource)
            events << "unlock:${resource}".toString()
        }
    }

    /** This build, as the controller knows it (job JOB_NAME, number currentBuild.number). */
    Controller.Build thisBuild() {
        if (controller.underTest == null) {
            controller.underTest = controller.build(envVars.JOB_NAME as String, build.number as int)
        }
        return controller.underTest
    }

    /** How the Milestone Step plugin interrupts a cancelled build. */
    static FlowInterruptedException superseded(Controller.Build cancelled) {
        return new FlowInterruptedException(Result.NOT_BUILT, new CancelledCause(cancelled.cancelledBy))
    }
}

/** currentBuild of a running build: its duration counts up with the test's clock, as RunWrapper.getDuration does. */
class RunningBuild extends LinkedHashMap<String, Object> {
    private final Closure elapsed

    RunningBuild(Closure elapsed) {
        this.@elapsed = elapsed
    }

    @Override
    Object get(Object key) {
        return key == 'duration' ? this.@elapsed.call() : super.get(key)
    }
}
