/**
 * mlciTest: runs the project's test suite (`mlci test`, pytest) and publishes JUnit results and
 * coverage (reports/junit.xml, reports/coverage.xml) even when tests fail.
 *
 * The tests are the branch's (or pull request's) code: they run in a venv of their own, private to
 * this build and thrown away (mlciSetup isolated: true, at .mlci/test-venv), never in the cached venv
 * that Train, Build and the deploys run with their credentials: nothing a test writes there (a .pth
 * file, a patched package) survives into another stage or build.
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
    if (c.isolated) {
        Map tools = mlciSetup(c + [venv: '.mlci/test-venv', isolated: true, cleanReports: false]) as Map
        run = c + [mlci: tools.mlci]
    }
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
