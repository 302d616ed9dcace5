/**
 * mlciPublish: publishes what mlci wrote under reports/: archives reports/** (not fingerprinted),
 * archives and fingerprints the model bundle (build/bundle/**), publishes the JUnit results and
 * the coverage report (also for failed builds). Missing files are skipped, and a missing coverage plugin
 * only downgrades to archiving coverage.xml. Safe to call from `post { always { ... } }`.
 *
 * Parameters (defaults in brackets):
 *   archive    archive reports/** and the bundle [true]
 *   bundle     bundle files to archive with fingerprints [build/bundle/**]; '' for none
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
        bundle: 'build/bundle/**',
    ] + config

    if (c.junit && fileExists(c.junit)) {
        junit(testResults: c.junit, allowEmptyResults: true)
    }
    if (c.coverage && fileExists(c.coverage)) {
        try {
            // enabledForFailure: a build whose tests failed still shows its coverage.
            recordCoverage(tools: [[parser: 'COBERTURA', pattern: c.coverage]], id: 'mlci-coverage',
                name: 'mlci coverage', sourceCodeRetention: 'NEVER', enabledForFailure: true)
        } catch (NoSuchMethodError ignored) {
            echo("mlciPublish: the Coverage plugin is not installed; ${c.coverage} is archived instead.")
            archiveArtifacts(artifacts: c.coverage, allowEmptyArchive: true)
        } catch (MissingMethodException ignored) {
            echo("mlciPublish: the Coverage plugin is not installed; ${c.coverage} is archived instead.")
            archiveArtifacts(artifacts: c.coverage, allowEmptyArchive: true)
        }
    }
    if (c.archive) {
        // Reports change every build and identify nothing: archived, not fingerprinted. The model
        // bundle is what travels to images and environments: fingerprinted, so Jenkins can tell
        // which builds used the same bundle. Images are identified by the digests in reports/build.json.
        archiveArtifacts(artifacts: 'reports/**', allowEmptyArchive: true, fingerprint: false)
        if (c.bundle) {
            archiveArtifacts(artifacts: c.bundle, allowEmptyArchive: true, fingerprint: true)
        }
    }
}
