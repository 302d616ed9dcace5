package org.jenkinsci.plugins.workflow.steps

import hudson.model.Result
import jenkins.model.CauseOfInterruption

/**
 * Test stand-in for Jenkins' FlowInterruptedException (an InterruptedException), thrown by
 * `input` on abort (cause Rejection), by `timeout` when time is up (cause
 * TimeoutStepExecution.ExceededTimeout), by the stop button (CauseOfInterruption.UserInterruption)
 * and by `milestone` when a newer build passes (result NOT_BUILT). Like the real one it carries a
 * Result and its causes, and has no message.
 */
class FlowInterruptedException extends InterruptedException {
    private final Result result
    private final List<CauseOfInterruption> causes
    private final boolean actualInterruption

    FlowInterruptedException(Result result, CauseOfInterruption... causes) {
        this(result, true, causes)
    }

    FlowInterruptedException(Result result, boolean actualInterruption, CauseOfInterruption... causes) {
        super()
        this.result = result
        this.actualInterruption = actualInterruption
        this.causes = Arrays.asList(causes)
    }

    /** Shorthand of older tests: a result name and a free-text cause. */
    FlowInterruptedException(String result, String cause) {
        this(Result.fromString(result), true, new TextCause(cause))
    }

    Result getResult() {
        return result
    }

    List<CauseOfInterruption> getCauses() {
        return causes
    }

    boolean isActualInterruption() {
        return actualInterruption
    }

    /** A cause known only by its description. */
    static class TextCause extends CauseOfInterruption {
        final String text

        TextCause(String text) {
            this.text = text
        }

        String getShortDescription() {
            return text
        }
    }
}
