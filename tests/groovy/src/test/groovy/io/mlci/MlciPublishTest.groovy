package io.mlci

import org.junit.Test

class MlciPublishTest extends LibraryTestBase {

    @Test
    void 'archives reports and publishes JUnit and coverage'() {
        givenFile('reports/junit.xml', '<testsuite/>')
        givenFile('reports/coverage.xml', '<coverage/>')

        step('mlciPublish')

        assert events == ['junit:reports/junit.xml', 'recordCoverage:reports/coverage.xml', 'archive:reports/**',
                          'archive:build/bundle/**']
        assert coverages[0].enabledForFailure == true
    }

    @Test
    void 'JSON reports are archived without fingerprints, only the model bundle is fingerprinted'() {
        step('mlciPublish')

        assert archives.find { it.artifacts == 'reports/**' }.fingerprint == false
        assert archives.find { it.artifacts == 'build/bundle/**' }.fingerprint == true
        assert archives.every { it.allowEmptyArchive == true }
    }

    @Test
    void 'missing reports are skipped so post always never breaks on an early failure'() {
        step('mlciPublish', [bundle: ''])

        assert events == ['archive:reports/**']
    }

    @Test
    void 'a missing coverage plugin (script side) falls back to archiving'() {
        givenFile('reports/coverage.xml', '<coverage/>')
        helper.allowedMethodCallbacks.keySet().removeAll { it.name == 'recordCoverage' }

        step('mlciPublish', [archive: false])

        assert events == ['archive:reports/coverage.xml']
    }
}
