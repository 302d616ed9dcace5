package org.jenkinsci.plugins.workflow.steps

import jenkins.model.CauseOfInterruption

/** Test stand-in for the timeout step's execution: only its cause of interruption is needed. */
class TimeoutStepExecution {
    /** The cause the timeout step gives when its time is up (the interruption's result is ABORTED). */
    static class ExceededTimeout extends CauseOfInterruption {
        final String nodeId

        ExceededTimeout() {
            this(null)
        }

        ExceededTimeout(String nodeId) {
            this.nodeId = nodeId
        }

        String getShortDescription() {
            return 'Timeout has been exceeded'
        }
    }
}
