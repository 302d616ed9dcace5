package io.mlci

import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException

/**
 * A small interpreter of the declarative pipeline DSL, enough to run a Jenkinsfile against the
 * fakes of PipelineTestBase. JenkinsPipelineUnit 1.1 has no DeclarativePipelineTest.
 *
 * Semantics kept from Jenkins (Pipeline: Declarative):
 *   - parameters become params (defaults on the first build) and env; `environment` is evaluated
 *     when the run starts, after the parameters;
 *   - the top-level agent (`any`, `label`) wraps everything in one node; `agent none` takes none;
 *   - a stage is evaluated when it is reached, in Jenkins' order: `when` (if beforeOptions), its
 *     options (lock, timeout) around the rest, `when` (if beforeInput), `when` (if beforeAgent),
 *     its agent (a new node + the implicit checkout), `when` (default), then its steps or its
 *     nested `stages`, then its `post` (inside the agent);
 *   - after a failure the remaining stages are skipped; an interruption (FlowInterruptedException)
 *     gives the build the interruption's result (ABORTED, NOT_BUILT), an error FAILURE;
 *   - post conditions run after the stages in Jenkins' order.
 * Anything else (parallel, matrix, the input directive, tools) is not interpreted: the DSL
 * objects have no such method, so a Jenkinsfile using it fails the test loudly.
 */
class DeclarativeRun {
    final PipelineTestBase test
    Object agent
    List<Map> options = []
    Map<String, Object> parameterDefaults = [:]
    Closure environment
    List<StageRun> stages = []
    Map<String, Closure> post = [:]
    List<String> ran = []
    List<String> skipped = []
    Throwable failure

    DeclarativeRun(PipelineTestBase test) {
        this.test = test
    }

    /** Runs BODY against a DSL object, then detaches it so closures collected inside resolve to the script. */
    static Object dsl(Object delegate, Closure body) {
        Closure c = (Closure) body.clone()
        c.resolveStrategy = Closure.DELEGATE_FIRST
        c.delegate = delegate
        try {
            return c.call()
        } finally {
            c.delegate = null
        }
    }

    /** All the stages, nested ones included, depth first (the order Jenkins shows them). */
    List<StageRun> allStages() {
        List<StageRun> all = []
        stages.each { StageRun s -> all.addAll(s.withNested()) }
        return all
    }

    StageRun stage(String name) {
        StageRun found = allStages().find { it.name == name }
        assert found != null: "no stage '${name}' in ${allStages()*.name}"
        return found
    }

    void execute(Closure body) {
        dsl(new PipelineDsl(this), body)
        parameterDefaults.each { k, v ->
            if (!test.params.containsKey(k)) {
                test.params[k] = v
            }
            test.envVars[k] = test.params[k]
        }
        if (environment != null) {
            Map<String, Object> values = [:]
            dsl(new EnvironmentDsl(values), environment)
            values.each { k, v -> test.envVars[k] = v?.toString() }
        }
        if (agent == 'none') {
            runStages(stages)
            finish()
        } else {
            // The top-level agent holds one node for the stages and the post conditions.
            test.onAgent(agent == 'any' ? null : agent.toString(), { ->
                runStages(stages)
                finish()
            })
        }
    }

    void finish() {
        String result = test.build.result ?: 'SUCCESS'
        if (failure != null && result == 'SUCCESS') {
            result = 'FAILURE'
        }
        test.build.result = result
        runPost('always')
        runPost(result == 'NOT_BUILT' ? 'notBuilt' : result.toLowerCase())
        if (result != 'SUCCESS') {
            runPost('unsuccessful')
        }
        runPost('cleanup')
    }

    void runStages(List<StageRun> list) {
        for (StageRun stage : list) {
            if (failure != null) {
                stage.withNested().each { StageRun s ->
                    skipped << s.name
                    test.events << "skip:${s.name}".toString()
                }
                continue
            }
            stage.run()
        }
    }

    void runPost(String condition) {
        Closure body = post[condition]
        if (body != null) {
            test.events << "post:${condition}".toString()
            body.call()
        }
    }
}

class PipelineDsl {
    final DeclarativeRun run

    PipelineDsl(DeclarativeRun run) {
        this.run = run
    }

    String getAny() {
        return 'any'
    }

    String getNone() {
        return 'none'
    }

    void agent(Object value) {
        run.agent = value instanceof Closure ? new AgentDsl().read((Closure) value) : value
    }

    void options(Closure body) {
        DeclarativeRun.dsl(new Recorder(run.options), body)
    }

    void parameters(Closure body) {
        List<Map> declared = []
        DeclarativeRun.dsl(new Recorder(declared), body)
        declared.each { Map p ->
            Map args = p.args[0] as Map
            run.parameterDefaults[args.name as String] = args.defaultValue
        }
    }

    void environment(Closure body) {
        run.environment = body
    }

    void stages(Closure body) {
        DeclarativeRun.dsl(new StagesDsl(run, run.stages, null), body)
    }

    void post(Closure body) {
        DeclarativeRun.dsl(new PostDsl(run.post), body)
    }
}

/** `agent { ... }`: none, any, label 'x', node { label 'x' }. Returns 'none', 'any' or the label. */
class AgentDsl {
    Object value

    Object read(Closure body) {
        DeclarativeRun.dsl(this, body)
        assert value != null: 'agent {} with no agent type'
        return value
    }

    String getAny() {
        value = 'any'
        return 'any'
    }

    String getNone() {
        value = 'none'
        return 'none'
    }

    void label(Object label) {
        assert label != null && label.toString().trim(): 'agent { label } with an empty label'
        value = label.toString()
    }

    void node(Closure body) {
        DeclarativeRun.dsl(this, body)
    }
}

/** Records every call as [name: ..., args: [...]]. */
class Recorder {
    final List<Map> calls

    Recorder(List<Map> calls) {
        this.calls = calls
    }

    Object methodMissing(String name, Object args) {
        Map call = [name: name, args: args as List]
        calls << call
        return call
    }
}

class EnvironmentDsl {
    final Map<String, Object> values

    EnvironmentDsl(Map<String, Object> values) {
        this.values = values
    }

    void propertyMissing(String name, Object value) {
        values[name] = value
    }
}

class StagesDsl {
    final DeclarativeRun run
    final List<StageRun> into
    final StageRun parent

    StagesDsl(DeclarativeRun run, List<StageRun> into, StageRun parent) {
        this.run = run
        this.into = into
        this.parent = parent
    }

    void stage(String name, Closure body) {
        StageRun stage = new StageRun(run, name, body, parent)
        // Directives are read up front so the structure is known (nested stages, agents); the
        // expressions inside them (when, labels, lock names) are evaluated when the stage runs.
        stage.read()
        into << stage
    }
}

class PostDsl {
    final Map<String, Closure> conditions

    PostDsl(Map<String, Closure> conditions) {
        this.conditions = conditions
    }

    Object methodMissing(String name, Object args) {
        conditions[name] = (args as List)[0] as Closure
        return null
    }
}

class StageRun {
    final DeclarativeRun run
    final String name
    final Closure definition
    final StageRun parent
    List<Closure> conditions = []
    List<Map> options = []
    Closure optionsBody
    Closure agentBody
    Object agent
    Closure steps
    List<StageRun> nested = null
    Map<String, Closure> post = [:]
    boolean beforeOptions = false
    boolean beforeInput = false
    boolean beforeAgent = false

    StageRun(DeclarativeRun run, String name, Closure definition, StageRun parent) {
        this.run = run
        this.name = name
        this.definition = definition
        this.parent = parent
    }

    void read() {
        DeclarativeRun.dsl(new StageDsl(this), definition)
        assert (steps == null) != (nested == null): "stage '${name}' needs exactly one of steps {} and stages {}"
    }

    List<StageRun> withNested() {
        List<StageRun> all = [this]
        nested?.each { StageRun s -> all.addAll(s.withNested()) }
        return all
    }

    /** The agent label this stage runs on ('none' when it takes no node of its own). */
    Object agentValue() {
        return agentBody == null ? 'none' : new AgentDsl().read(agentBody)
    }

    void run() {
        // Re-read the directives now: Jenkins evaluates when, options and agent when the stage
        // is reached (env set by earlier stages is visible).
        conditions = []
        options = []
        DeclarativeRun.dsl(new StageDsl(this, true), definition)
        if (optionsBody != null) {
            DeclarativeRun.dsl(new Recorder(options), optionsBody)
        }
        run.test.events << "enter:${name}".toString()
        try {
            if (beforeOptions && !conditionsHold()) {
                return
            }
            wrap(0)
        } catch (FlowInterruptedException e) {
            run.failure = e
            run.test.build.result = e.result.toString()
        } catch (Exception e) {
            run.failure = e
            run.test.build.result = 'FAILURE'
        }
    }

    boolean conditionsHold() {
        for (Closure condition : conditions) {
            if (!condition.call()) {
                withNested().each { StageRun s ->
                    run.skipped << s.name
                    run.test.events << "skip:${s.name}".toString()
                }
                return false
            }
        }
        return true
    }

    /** Applies the stage options in the order declared (first = outermost), then the rest. */
    void wrap(int index) {
        if (index == options.size()) {
            if (!beforeOptions && (beforeInput || beforeAgent) && !conditionsHold()) {
                return
            }
            Object where = agentValue()
            if (where == 'none') {
                body(!beforeOptions && !beforeInput && !beforeAgent)
            } else {
                run.test.onAgent(where == 'any' ? null : where.toString(), { ->
                    body(!beforeOptions && !beforeInput && !beforeAgent)
                })
            }
            return
        }
        Map option = options[index]
        List args = option.args as List
        if (option.name == 'lock') {
            Map lockArgs = args[0] instanceof Map ? args[0] as Map : [resource: args[0]]
            run.test.lockCalls << lockArgs
            run.test.holdLock(lockArgs.resource.toString(), { -> wrap(index + 1) }, lockArgs.inversePrecedence as boolean)
        } else if (option.name == 'timeout') {
            run.test.onTimeout(args[0] as Map, { -> wrap(index + 1) })
        } else if (option.name in ['skipDefaultCheckout', 'retry']) {
            throw new AssertionError((Object) "stage option ${option.name} is not interpreted by DeclarativeRun".toString())
        } else {
            wrap(index + 1)
        }
    }

    /** Inside the options and the agent: the default `when`, then steps or nested stages, then post. */
    void body(boolean checkWhen) {
        if (checkWhen && !conditionsHold()) {
            return
        }
        run.ran << name
        run.test.events << "stage:${name}".toString()
        String outcome = 'success'
        Throwable thrown = null
        try {
            if (steps != null) {
                steps.call()
            } else {
                run.runStages(nested)
                if (run.failure != null) {
                    thrown = run.failure
                }
            }
        } catch (FlowInterruptedException e) {
            thrown = e
        } catch (Exception e) {
            thrown = e
        }
        if (thrown instanceof FlowInterruptedException) {
            outcome = ((FlowInterruptedException) thrown).result.toString() == 'NOT_BUILT' ? 'notBuilt' : 'aborted'
        } else if (thrown != null) {
            outcome = 'failure'
        } else if (run.test.build.result == 'UNSTABLE') {
            outcome = 'unstable'
        }
        runStagePost('always')
        runStagePost(outcome)
        if (outcome != 'success') {
            runStagePost('unsuccessful')
        }
        runStagePost('cleanup')
        if (thrown != null) {
            throw thrown
        }
    }

    void runStagePost(String condition) {
        if (post[condition] != null) {
            run.test.events << "post:${name}:${condition}".toString()
            post[condition].call()
        }
    }
}

class StageDsl {
    final StageRun stage
    final boolean atRunTime

    StageDsl(StageRun stage, boolean atRunTime = false) {
        this.stage = stage
        this.atRunTime = atRunTime
    }

    void when(Closure body) {
        if (atRunTime) {
            DeclarativeRun.dsl(new WhenDsl(stage.conditions, stage.run.test, stage), body)
        }
    }

    String getNone() {
        return 'none'
    }

    void agent(Object value) {
        assert value instanceof Closure: "stage '${stage.name}': write agent { label ... } (or leave the agent out)"
        stage.agentBody = (Closure) value
    }

    void options(Closure body) {
        stage.optionsBody = body
    }

    void steps(Closure body) {
        stage.steps = body
    }

    void stages(Closure body) {
        if (!atRunTime) {
            stage.nested = []
            DeclarativeRun.dsl(new StagesDsl(stage.run, stage.nested, stage), body)
        }
    }

    void post(Closure body) {
        if (!atRunTime) {
            DeclarativeRun.dsl(new PostDsl(stage.post), body)
        }
    }
}

class WhenDsl {
    final List<Closure> conditions
    final PipelineTestBase test
    StageRun stage

    WhenDsl(List<Closure> conditions, PipelineTestBase test, StageRun stage = null) {
        this.conditions = conditions
        this.test = test
        this.stage = stage
    }

    void expression(Closure body) {
        conditions << { -> body.call() as boolean }
    }

    void branch(String pattern) {
        String regex = pattern.replace('.', '\\.').replace('*', '.*')
        conditions << { -> (test.envVars.BRANCH_NAME ?: '') ==~ regex }
    }

    void changeRequest() {
        conditions << { -> test.envVars.CHANGE_ID != null }
    }

    void beforeAgent(boolean value) {
        stage.beforeAgent = value
    }

    void beforeInput(boolean value) {
        stage.beforeInput = value
    }

    void beforeOptions(boolean value) {
        stage.beforeOptions = value
    }

    void not(Closure body) {
        List<Closure> inner = []
        DeclarativeRun.dsl(new WhenDsl(inner, test), body)
        conditions << { -> !inner.every { it.call() } }
    }

    void allOf(Closure body) {
        List<Closure> inner = []
        DeclarativeRun.dsl(new WhenDsl(inner, test), body)
        conditions << { -> inner.every { it.call() } }
    }

    void anyOf(Closure body) {
        List<Closure> inner = []
        DeclarativeRun.dsl(new WhenDsl(inner, test), body)
        conditions << { -> inner.any { it.call() } }
    }
}
