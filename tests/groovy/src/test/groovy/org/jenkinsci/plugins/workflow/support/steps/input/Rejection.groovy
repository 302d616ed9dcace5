package org.jenkinsci.plugins.workflow.support.steps.input

import jenkins.model.CauseOfInterruption

/** Test stand-in for the cause the input step gives when a user presses Abort on it. */
class Rejection extends CauseOfInterruption {
    private final String user

    Rejection(String user) {
        this.user = user
    }

    String getShortDescription() {
        return user ? "Rejected by ${user}".toString() : 'Rejected'
    }
}
