/**
 * mlciTest: runs the project's test suite (`mlci test`, pytest) and publishes JUnit results and
 * coverage (reports/junit.xml, reports/coverage.xml) even when tests fail.
 *
 * Parameters (defaults in brackets):
 *   publish    publish JUnit and coverage here [true]; false when `post` calls mlciPublish()
 *   plus the common keys of mlciCommand (mlci, config, mlflowTrackingUri); no MLflow credentials
 *   are bound: the code under test is the branch's or pull request's own
 *
 * Returns the exit status (0). Failing tests fail the build with a pointer to the results.
 *
 * Example:
 *   mlciTest()
 */
def call(Map config = [:]) {
    Map c = [publish: true] + config
    // Publishing cannot hide the test run's own failure (a lost agent, a timeout): mlciCleanup.
    int status = mlciCleanup(what: 'publishing the test results', cleanup: {
        if (c.publish) {
            mlciPublish(archive: false)
        }
    }) {
        return mlciCommand(c + [command: 'test', script: '"$MLCI_BIN" test'])
    } as int
    if (status == 1) {
        error('mlci test: the test suite failed (exit 1). See the Test Result page or reports/junit.xml ' +
            'for the failing tests.')
    }
    return status
}
