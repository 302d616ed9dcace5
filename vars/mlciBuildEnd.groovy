/**
 * mlciBuildEnd: the message ops read when a build ends badly, in the same words for the root
 * Jenkinsfile (its `post` blocks) and mlciPipeline: what the build did to production, and the
 * command to check it. Runs no sh and needs no node.
 *
 * Parameters (defaults in brackets):
 *   result             ABORTED, FAILURE, NOT_BUILT (superseded by a newer build), or STOPPED
 *                      (interrupted: aborted, timed out or superseded, the step cannot tell which)
 *                      [FAILURE]
 *   stage              the last stage the build entered ['']
 *   productionStarted  whether Deploy production had started [false]
 *   env                the production environment [production]
 *
 * Returns the message (also echoed).
 *
 * Example:
 *   post { aborted { mlciBuildEnd(result: 'ABORTED', stage: stageReached, productionStarted: started) } }
 */
def call(Map config = [:]) {
    Map c = [result: 'FAILURE', stage: '', productionStarted: false, env: 'production'] + config
    String message = buildEndMessage(c.result as String, c.stage as String, c.productionStarted as boolean, c.env as String)
    echo(message)
    return message
}

@NonCPS
String buildEndMessage(String result, String stage, boolean productionStarted, String envName) {
    String reached = stage ?: 'none'
    if (result == 'FAILURE') {
        if (productionStarted) {
            return "Build failed in Deploy ${envName}: see the first error above. A failed verification has already " +
                "been switched back by mlci deploy; `mlci status --env ${envName}` shows what ${envName} serves."
        }
        String subject = envName.substring(0, 1).toUpperCase() + envName.substring(1)
        return "Build failed (last stage entered: ${reached}): see the first error above. ${subject} was not " +
            'touched by this build.'
    }
    String how = [ABORTED: 'aborted', NOT_BUILT: 'superseded by a newer build of this branch'][result] ?:
        'stopped (aborted, timed out, or superseded by a newer build)'
    // The Milestone Step plugin also counts a newer build that ENDED after a milestone, even failed, as past it.
    String superseded = result == 'ABORTED' ? '' : " If a newer build superseded it ('Superseded by #N' above): " +
        'the Milestone Step plugin counts a build that ended as past its milestones, so if the build that ' +
        'superseded this one failed, start a new build once it is fixed.'
    if (productionStarted) {
        // Jenkins kills the mlci process ~5 s after SIGTERM: a switch may have been cut short.
        return "Build ${how} during Deploy ${envName}: the deploy may have been cut short. Check what ${envName} " +
            "serves with `mlci status --env ${envName}` (or the last record of reports/deploy-${envName}.json) " +
            "before anything else; roll back with `mlci rollback --env ${envName}` if it is not what you expect." +
            superseded
    }
    return "Build ${how} (last stage entered: ${reached}) before mlci deploy touched ${envName}: nothing was " +
        "deployed to ${envName} by this build." + superseded
}
