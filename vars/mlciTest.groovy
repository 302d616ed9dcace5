/**
 * mlciTest: runs the project's test suite (`mlci test`, pytest) and publishes JUnit results and
 * coverage (reports/junit.xml, reports/coverage.xml) even when tests fail.
 *
 * The tests are the branch's (or pull request's) code: they run in a venv of their own, private to
 * this build and thrown away (mlciSetup isolated: true, at .mlci/test-venv), never in the cached venv
 * that Train, Build and the deploys run with their credentials: nothing a test writes there (a .pth
 * file, a patched package) survives into another stage or build. And they run sandboxed (`mlci test`
 * with MLCI_TEST_SANDBOX, Linux Landlock): they can write only beneath the workspace's entries (not
 * its .git, whose hooks the next checkout runs), the temp dir and their private venv, never into the
 * agents' venv cache, ~/.ssh or another workspace, even as
 * the agent's user. The administrator's env.MLCI_TEST_SANDBOX chooses: auto (the default: sandboxed
 * where the kernel has Landlock, said in the log where not), required (a Test stage on an agent
 * without Landlock fails), off.
 *
 * Parameters (defaults in brackets):
 *   publish    publish JUnit and coverage here [true]; false when `post` calls mlciPublish()
 *   isolated   run in that private venv [true]; false runs in the workspace's .venv (mlci)
 *   plus the keys of mlciSetup for the private venv (source, indexUrl, findLinks, python, ...)
 *   plus the common keys of mlciCommand (mlci, config, mlflowTrackingUri); no MLflow credentials
 *   are bound: the code under test is the branch's or pull request's own
 *
 * Returns the exit status (0). Failing tests fail the build with a pointer to the results.
 *
 * Example:
 *   mlciTest()
 */
def call(Map config = [:]) {
    Map c = [publish: true, isolated: true] + config
    Map run = c
    List<String> writable = []
    if (c.isolated) {
        Map tools = mlciSetup(c + [venv: '.mlci/test-venv', isolated: true, cleanReports: false]) as Map
        run = c + [mlci: tools.mlci]
        // The tests' own throwaway venv (mlciSetup's private cache for them) stays writable: bytecode, pip.
        writable << "${pwd(tmp: true)}/mlci-test-venvs".toString()
    }
    List<String> sandbox = ["MLCI_TEST_SANDBOX=${env.MLCI_TEST_SANDBOX ?: 'auto'}".toString(),
                            "MLCI_TEST_WRITABLE=${writable.join(':')}".toString()]
    run = run + [vars: ((run.vars ?: []) as List) + sandbox]
    // Publishing cannot hide the test run's own failure (a lost agent, a timeout): mlciCleanup.
    int status = mlciCleanup(what: 'publishing the test results', cleanup: {
        if (c.publish) {
            mlciPublish(archive: false)
        }
    }) {
        return mlciCommand(run + [command: 'test', script: '"$MLCI_BIN" test'])
    } as int
    if (status == 1) {
        error('mlci test: the test suite failed (exit 1). See the Test Result page or reports/junit.xml ' +
            'for the failing tests.')
    }
    return status
}
