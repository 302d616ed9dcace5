package io.mlci

import org.junit.Test

class MlciPublishTest extends LibraryTestBase {

    @Test
    void 'archives reports and publishes JUnit and coverage'() {
        givenFile('reports/junit.xml', '<testsuite/>')
        givenFile('reports/coverage.xml', '<coverage/>')

        step('mlciPublish')

        assert events == ['junit:reports/junit.xml', 'recordCoverage:reports/coverage.xml', 'archive:reports/**']
    }

    @Test
    void 'missing reports are skipped so post always never breaks on an early failure'() {
        step('mlciPublish')

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
