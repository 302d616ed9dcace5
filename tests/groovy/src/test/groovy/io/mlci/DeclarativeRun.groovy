package io.mlci

import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException

/**
 * A small interpreter of the declarative pipeline DSL (pipeline, agent, options, parameters,
 * environment, stages, stage, when, steps, post), enough to run the root Jenkinsfile against the
 * fakes of LibraryTestBase. JenkinsPipelineUnit 1.1 has no DeclarativePipelineTest.
 *
 * Semantics kept from Jenkins: parameters become params and env; environment is set before the
 * stages; a stage runs only when all its `when` conditions hold; stage options (lock, timeout)
 * wrap the stage and, unless `beforeOptions true`, the evaluation of its `when`;
 * after a failure the remaining stages are skipped; an interruption makes the build
 * ABORTED, an error makes it FAILURE; post conditions run after the stages.
 */
class DeclarativeRun {
    final LibraryTestBase test
    Object agent
    List<Map> options = []
    Map<String, Object> parameterDefaults = [:]
    List<StageRun> stages = []
    Map<String, Closure> post = [:]
    List<String> ran = []
    List<String> skipped = []
    Throwable failure

    DeclarativeRun(LibraryTestBase test) {
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

    void execute(Closure body) {
        dsl(new PipelineDsl(this), body)
        parameterDefaults.each { k, v ->
            if (!test.params.containsKey(k)) {
                test.params[k] = v
            }
            test.envVars[k] = test.params[k]
        }
        for (StageRun stage : stages) {
            if (failure != null) {
                skipped << stage.name
                continue
            }
            stage.run()
        }
        String result = test.build.result ?: 'SUCCESS'
        if (failure != null && result == 'SUCCESS') {
            result = 'FAILURE'
        }
        test.build.result = result
        runPost('always')
        runPost(result.toLowerCase())
        if (result != 'SUCCESS') {
            runPost('unsuccessful')
        }
        runPost('cleanup')
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
        run.agent = value
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
        Map<String, Object> values = [:]
        DeclarativeRun.dsl(new EnvironmentDsl(values), body)
        values.each { k, v -> run.test.envVars[k] = v?.toString() }
    }

    void stages(Closure body) {
        DeclarativeRun.dsl(new StagesDsl(run), body)
    }

    void post(Closure body) {
        DeclarativeRun.dsl(new PostDsl(run.post), body)
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

    StagesDsl(DeclarativeRun run) {
        this.run = run
    }

    void stage(String name, Closure body) {
        run.stages << new StageRun(run, name, body)
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
    List<Closure> conditions = []
    List<Map> options = []
    Closure steps
    Map<String, Closure> post = [:]
    boolean beforeOptions = false

    StageRun(DeclarativeRun run, String name, Closure definition) {
        this.run = run
        this.name = name
        this.definition = definition
    }

    void run() {
        // Jenkins evaluates a stage's directives when the stage is reached; `when` is evaluated
        // inside the stage options (e.g. holding its lock) unless `beforeOptions true`.
        DeclarativeRun.dsl(new StageDsl(this), definition)
        try {
            if (beforeOptions) {
                if (conditionsHold()) {
                    wrap(0)
                }
            } else {
                wrap(0, { -> conditionsHold() })
            }
            runStagePost('success')
        } catch (FlowInterruptedException e) {
            run.failure = e
            run.test.build.result = 'ABORTED'
            runStagePost('aborted')
        } catch (Exception e) {
            run.failure = e
            run.test.build.result = 'FAILURE'
            runStagePost('failure')
        } finally {
            runStagePost('always')
        }
    }

    boolean conditionsHold() {
        for (Closure condition : conditions) {
            if (!condition.call()) {
                run.skipped << name
                run.test.events << "skip:${name}".toString()
                return false
            }
        }
        run.ran << name
        run.test.events << "stage:${name}".toString()
        return true
    }

    void runStagePost(String condition) {
        if (post[condition] != null) {
            post[condition].call()
        }
    }

    void wrap(int index, Closure gate = null) {
        if (index == options.size()) {
            if (gate == null || gate.call()) {
                steps.call()
            }
            return
        }
        Map option = options[index]
        List args = option.args as List
        if (option.name == 'lock') {
            String resource = args[0] instanceof Map ? args[0].resource : args[0]
            run.test.holdLock(resource.toString(), { -> wrap(index + 1, gate) })
        } else if (option.name == 'timeout') {
            run.test.timeouts << (args[0] as Map)
            wrap(index + 1, gate)
        } else {
            wrap(index + 1, gate)
        }
    }
}

class StageDsl {
    final StageRun stage

    StageDsl(StageRun stage) {
        this.stage = stage
    }

    void when(Closure body) {
        DeclarativeRun.dsl(new WhenDsl(stage.conditions, stage.run.test, stage), body)
    }

    void options(Closure body) {
        DeclarativeRun.dsl(new Recorder(stage.options), body)
    }

    void steps(Closure body) {
        stage.steps = body
    }

    void post(Closure body) {
        DeclarativeRun.dsl(new PostDsl(stage.post), body)
    }
}

class WhenDsl {
    final List<Closure> conditions
    final LibraryTestBase test
    StageRun stage

    WhenDsl(List<Closure> conditions, LibraryTestBase test, StageRun stage = null) {
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

    void beforeAgent(boolean ignored) {
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

