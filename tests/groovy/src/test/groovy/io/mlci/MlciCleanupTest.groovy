package io.mlci

import hudson.AbortException
import hudson.remoting.ChannelClosedException
import org.jenkinsci.plugins.workflow.steps.MissingContextVariableException
import org.junit.Test

/** vars/mlciCleanup.groovy: a `finally` whose own failure never hides the body's. */
class MlciCleanupTest extends LibraryTestBase {

    Throwable thrownBy(Closure body, Closure cleanup) {
        try {
            libraryVar('mlciCleanup').invokeMethod('call', [[what: 'archiving the reports', cleanup: cleanup], body] as Object[])
        } catch (Throwable thrown) {
            return thrown
        }
        throw new AssertionError((Object) 'mlciCleanup was expected to throw')
    }

    @Test
    void 'the body returns its value and the clean-up runs'() {
        boolean cleaned = false
        Object value = libraryVar('mlciCleanup').invokeMethod('call',
            [[cleanup: { -> cleaned = true }], { -> 42 }] as Object[])

        assert value == 42
        assert cleaned
    }

    @Test
    void 'when both fail the body failure propagates and the clean-up failure is logged second'() {
        AbortException first = new AbortException('mlci deploy: verification failed')

        Throwable thrown = thrownBy({ -> throw first }, { -> throw new IOException('archive: no workspace') })

        assert thrown.is(first)
        assert log.any { it.contains('archiving the reports failed as well (java.io.IOException: archive: no workspace)') &&
            it.contains('the build fails with the first error: hudson.AbortException: mlci deploy: verification failed') }
    }

    @Test
    void 'a clean-up that fails after a body that succeeded fails the step'() {
        IOException cleanupError = new IOException('logout failed')

        assert thrownBy({ -> 'ok' }, { -> throw cleanupError }).is(cleanupError)
    }

    @Test
    void 'a body that lost its agent is named as such'() {
        envVars.NODE_NAME = 'agent-7'

        Throwable thrown = thrownBy({ -> throw new ChannelClosedException('Remote call on agent-7 failed') }, { -> })

        assert thrown instanceof ChannelClosedException
        assert log.any { it.startsWith('mlci: the agent agent-7 was lost while this stage ran') }
    }

    @Test
    void 'a missing workspace is a lost agent inside a node only, a step outside any node is not'() {
        Closure missing = { -> throw new MissingContextVariableException('hudson.FilePath') }

        thrownBy(missing, { -> })
        assert !log.any { it.contains('was lost') }: 'outside a node (no NODE_NAME) the caller is wrong, not the agent'

        envVars.NODE_NAME = 'agent-2'
        assert thrownBy(missing, { -> }) instanceof MissingContextVariableException
        assert log.any { it.startsWith('mlci: the agent agent-2 was lost while this stage ran') }
    }

    @Test
    void 'a missing clean-up is refused'() {
        try {
            libraryVar('mlciCleanup').invokeMethod('call', [[:], { -> 1 }] as Object[])
            assert false: 'expected an error'
        } catch (AbortException e) {
            assert e.message.contains('missing required parameter cleanup')
        }
    }
}
