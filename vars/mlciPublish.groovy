/**
 * mlciPublish: publishes what mlci wrote under reports/: archives reports/**, publishes the
 * JUnit results and the coverage report. Missing files are skipped, and a missing coverage plugin
 * only downgrades to archiving coverage.xml. Safe to call from `post { always { ... } }`.
 *
 * Parameters (defaults in brackets):
 *   archive    archive reports/** [true]
 *   junit      JUnit XML to publish [reports/junit.xml]
 *   coverage   Cobertura XML to publish [reports/coverage.xml]
 *
 * Example:
 *   post { always { mlciPublish() } }
 */
def call(Map config = [:]) {
    Map c = [
        archive: true,
        junit: 'reports/junit.xml',
        coverage: 'reports/coverage.xml',
    ] + config

    if (c.junit && fileExists(c.junit)) {
        junit(testResults: c.junit, allowEmptyResults: true)
    }
    if (c.coverage && fileExists(c.coverage)) {
        try {
            recordCoverage(tools: [[parser: 'COBERTURA', pattern: c.coverage]], id: 'mlci-coverage',
                name: 'mlci coverage', sourceCodeRetention: 'NEVER')
        } catch (NoSuchMethodError ignored) {
            echo("mlciPublish: the Coverage plugin is not installed; ${c.coverage} is archived instead.")
            archiveArtifacts(artifacts: c.coverage, allowEmptyArchive: true)
        } catch (MissingMethodException ignored) {
            echo("mlciPublish: the Coverage plugin is not installed; ${c.coverage} is archived instead.")
            archiveArtifacts(artifacts: c.coverage, allowEmptyArchive: true)
        }
    }
    if (c.archive) {
        archiveArtifacts(artifacts: 'reports/**', allowEmptyArchive: true, fingerprint: true)
    }
}
