package org.jenkinsci.plugins.workflow.steps

/**
 * Test stand-in for Jenkins' FlowInterruptedException (an InterruptedException), thrown by
 * `input` on abort, by `timeout` when time is up, and by `milestone` when a newer build passes.
 */
class FlowInterruptedException extends InterruptedException {
    final String result
    final String why

    FlowInterruptedException(String result, String cause) {
        super("${result}: ${cause}".toString())
        this.result = result
        this.why = cause
    }
}
