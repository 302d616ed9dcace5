/**
 * mlciCleanup: runs the body, then the clean-up whatever happened, as `try/finally` would, except
 * that a failing clean-up never hides the body's failure. On a lost agent, or when a timeout
 * stopped the body, the clean-up (archiving reports, logging out) usually fails too: a plain
 * `finally` would end the build with the clean-up's error (e.g. MissingContextVariableException:
 * Required context class hudson.FilePath is missing) instead of the real one, and as FAILURE
 * where the timeout meant ABORTED. Here the body's failure propagates unchanged; the clean-up's
 * is logged second. A failure that says the agent went away is named as such.
 * Used by mlciPipeline, mlciTest and mlciRegistryCredentials; not meant for a Jenkinsfile.
 *
 * Parameters:
 *   what     what the clean-up does, for the log ["the clean-up"]
 *   cleanup  closure run after the body, whatever happened (required)
 *
 * Returns what the body returns.
 *
 * Example:
 *   mlciCleanup(what: 'archiving the reports', cleanup: { mlciPublish(junit: '') }) { mlciBuild() }
 */
def call(Map config = [:], Closure body) {
    Map c = [what: 'the clean-up', cleanup: null] + config
    if (!(c.cleanup instanceof Closure)) {
        error('mlciCleanup: missing required parameter cleanup (a closure)')
    }
    Exception failure = null
    Object value = null
    try {
        value = body()
    } catch (Exception thrown) {
        // FlowInterruptedException (abort, timeout) and AbortException (error) are Exceptions too.
        failure = thrown
        if (agentLost(thrown, env.NODE_NAME as String)) {
            echo("mlci: the agent ${env.NODE_NAME ?: ''} was lost while this stage ran (${oneLine(thrown)}). " +
                'Nothing of it can be archived; run the build again once the agent is back.')
        }
    }
    try {
        c.cleanup.call()
    } catch (Exception cleanupFailed) {
        if (failure == null) {
            throw cleanupFailed
        }
        // The body's failure is the build's; this one is only reported.
        echo("mlci: ${c.what} failed as well (${oneLine(cleanupFailed)}); the build fails with the " +
            "first error: ${oneLine(failure)}")
    }
    if (failure != null) {
        throw failure
    }
    return value
}

/**
 * Whether FAILURE says the agent went away (its channel closed, it was removed or marked offline).
 * A missing workspace (no hudson.FilePath) means that only inside a node (NODE_NAME set); outside
 * one it is a step called where Jenkins has no workspace, a bug of the caller, not a lost agent.
 */
@NonCPS
boolean agentLost(Exception failure, String nodeName) {
    String text = String.valueOf(failure)
    if (text.contains('Required context class hudson.FilePath is missing')) {
        return nodeName as boolean
    }
    return ['ChannelClosedException', 'AgentOfflineException', 'RemovedNodeCause', 'was marked offline',
            'ClosedChannelException'].any { String sign -> text.contains(sign) }
}

@NonCPS
String oneLine(Exception failure) {
    String text = String.valueOf(failure).replaceAll('[\\s\\p{Cntrl}]+', ' ').trim()
    return text.length() > 300 ? text.substring(0, 300) + '...' : text
}
