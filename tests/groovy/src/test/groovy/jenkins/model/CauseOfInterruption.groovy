package jenkins.model

/** Test stand-in for jenkins.model.CauseOfInterruption: why a build or step was interrupted. */
abstract class CauseOfInterruption implements Serializable {
    abstract String getShortDescription()

    /** A user pressed the stop button of the build. */
    static class UserInterruption extends CauseOfInterruption {
        private final String user

        UserInterruption(String user) {
            this.user = user
        }

        String getUserId() {
            return user
        }

        String getShortDescription() {
            return "Aborted by ${user}".toString()
        }
    }
}
