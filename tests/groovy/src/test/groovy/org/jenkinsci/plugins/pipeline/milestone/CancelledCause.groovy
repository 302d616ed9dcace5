package org.jenkinsci.plugins.pipeline.milestone

import jenkins.model.CauseOfInterruption

/** Test stand-in for the Milestone Step plugin's CancelledCause: "Superseded by #N" (the newer build's display name). */
class CancelledCause extends CauseOfInterruption {
    private final String displayName

    CancelledCause(String displayName) {
        this.displayName = displayName
    }

    String getShortDescription() {
        return "Superseded by ${displayName}".toString()
    }
}
