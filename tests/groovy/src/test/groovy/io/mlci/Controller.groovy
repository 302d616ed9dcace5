package io.mlci

/**
 * What the builds of a Jenkins controller share, modelled after the plugins' source:
 *
 *   locks       Lockable Resources: a resource name is controller-wide (any job of any folder that
 *               names it contends for it); `lock` blocks while another build holds it; when it is
 *               released the next waiting build gets it: the oldest, or the newest if the releasing lock
 *               step asked inversePrecedence (LockableResourcesManager.unlockNames and
 *               getNextQueuedContext; mlci's steps give one value per resource); a build interrupted
 *               while it waits leaves the queue; a build's locks are released when its body ends.
 *   milestones  Pipeline Milestone Step (MilestoneStepExecution, per job): a build that passes
 *               ordinal N cancels the older builds of its job that passed no milestone or one below N,
 *               and is itself cancelled if a newer build already passed N or more; a build that
 *               completes with last milestone L, whatever its result, cancels the older builds of
 *               its job that passed no milestone or one up to L (Listener.onCompleted). Cancelling
 *               interrupts the build with NOT_BUILT and "Superseded by #N".
 *
 * The build under test is one Build; the others are driven by the test (start, pass, acquire,
 * release, complete) from closures the build under test runs while it waits, as other builds
 * progress on a controller meanwhile: `elsewhere` at a lock it cannot take (in order, until it gets
 * the lock), `duringInput` at an input (all of them), `afterRelease` between two stages.
 */
class Controller {

    /** One build of one job. */
    static class Build {
        final String job
        final int number
        /** Last milestone passed; null: none yet. */
        Integer milestone = null
        /** FAILURE, SUCCESS, NOT_BUILT... once completed. */
        String result = null
        /** The build whose milestone cancelled this one ("#8"), or null. */
        String cancelledBy = null

        Build(String job, int number) {
            this.job = job
            this.number = number
        }

        String getId() {
            return "${job}#${number}".toString()
        }

        boolean isRunning() {
            return result == null
        }

        @Override
        String toString() {
            return id
        }
    }

    final Map<String, Build> builds = new LinkedHashMap<String, Build>()
    final Map<String, Build> owners = new LinkedHashMap<String, Build>()
    /** resource -> the inversePrecedence its holder's lock step asked: it decides who gets it next. */
    final Map<String, Boolean> ownerInverse = new LinkedHashMap<String, Boolean>()
    /** resource -> waiting builds in arrival order, each with its inversePrecedence. */
    final Map<String, List<Map>> queues = new LinkedHashMap<String, List<Map>>()
    /** What happened on the controller, in order: 'granted:<res>:<build>', 'cancelled:<build>:Superseded by #N'... */
    final List<String> events = []
    /** What other builds do while the build under test waits at a lock: run in order, each once. */
    final List<Closure> elsewhere = []
    /** What other builds do while the build under test waits at an input (its approval): all of it. */
    final List<Closure> duringInput = []
    /**
     * resource -> what other builds do right after the build under test releases it, before its
     * next step: the gap between two stages, where a race can slip in.
     */
    final Map<String, List<Closure>> afterRelease = [:]

    /** The build NUMBER of JOB, started (it passed no milestone yet) if it was not known. */
    Build build(String job, int number) {
        String id = "${job}#${number}".toString()
        if (!builds.containsKey(id)) {
            builds[id] = new Build(job, number)
        }
        return builds[id]
    }

    // ---- milestones --------------------------------------------------------------------------

    /** BUILD passes milestone ORDINAL: older builds behind it are cancelled, or BUILD itself. */
    void pass(Build b, int ordinal) {
        b.milestone = ordinal
        events << "milestone:${b}:${ordinal}".toString()
        running(b.job).each { Build other ->
            if (other.number < b.number && (other.milestone == null || other.milestone < ordinal)) {
                cancel(other, b)
            } else if (other.number > b.number && other.milestone != null && other.milestone >= ordinal) {
                cancel(b, other)
            }
        }
    }

    /** BUILD ends with RESULT: its locks are released, and older builds up to its last milestone cancelled. */
    void complete(Build b, String result) {
        if (!b.running) {
            return
        }
        b.result = result
        events << "completed:${b}:${result}".toString()
        leaveQueues(b)
        owners.findAll { String res, Build owner -> owner.is(b) }.keySet().toList().each { String res -> release(b, res) }
        if (b.milestone != null) {
            running(b.job).findAll { Build other -> other.number < b.number && (other.milestone == null || other.milestone <= b.milestone) }
                .each { Build other -> cancel(other, b) }
        }
    }

    void cancel(Build victim, Build by) {
        if (!victim.running || victim.cancelledBy != null) {
            return
        }
        victim.cancelledBy = "#${by.number}".toString()
        events << "cancelled:${victim}:Superseded by #${by.number}".toString()
        if (!victim.is(underTest)) {
            // Another build: interrupted wherever it is, it ends NOT_BUILT (its locks released).
            complete(victim, 'NOT_BUILT')
        }
    }

    /** The build the test runs; its cancellation is raised by the test's fakes at its next wait. */
    Build underTest = null

    // ---- locks -------------------------------------------------------------------------------

    /** BUILD asks for RESOURCE: true if it holds it now, false if it waits in the queue. */
    boolean acquire(Build b, String resource, boolean inversePrecedence) {
        if (!owners.containsKey(resource)) {
            owners[resource] = b
            ownerInverse[resource] = inversePrecedence
            events << "granted:${resource}:${b}".toString()
            return true
        }
        queue(resource) << [build: b, inverse: inversePrecedence]
        events << "waiting:${resource}:${b}".toString()
        return false
    }

    /** BUILD lets RESOURCE go: the next waiter (oldest, or newest if BUILD's lock asked inversePrecedence) gets it. */
    void release(Build b, String resource) {
        if (!owners[resource].is(b)) {
            throw new AssertionError((Object) "${b} releases ${resource}, held by ${owners[resource]}".toString())
        }
        owners.remove(resource)
        boolean inverse = ownerInverse.remove(resource)
        events << "released:${resource}:${b}".toString()
        List<Map> waiting = queue(resource)
        if (waiting) {
            Map next = inverse ? waiting.max { (it.build as Build).number } : waiting.first()
            waiting.remove(next)
            owners[resource] = next.build as Build
            ownerInverse[resource] = next.inverse as boolean
            events << "granted:${resource}:${next.build}".toString()
        }
        if (b.is(underTest)) {
            afterRelease.remove(resource)?.each { Closure step -> step.call() }
        }
    }

    boolean holds(Build b, String resource) {
        return owners[resource].is(b)
    }

    void leaveQueues(Build b) {
        queues.values().each { List<Map> waiting -> waiting.removeAll { (it.build as Build).is(b) } }
    }

    /**
     * The build under test waits: other builds progress (the next `elsewhere` closure) until UNTIL
     * holds or it was cancelled. Returns false when nothing else is left to happen.
     */
    boolean waitUntil(Closure<Boolean> until, List<Closure> steps = elsewhere) {
        while (!until.call() && underTest?.cancelledBy == null) {
            if (steps.isEmpty()) {
                return false
            }
            steps.remove(0).call()
        }
        return true
    }

    private List<Map> queue(String resource) {
        if (!queues.containsKey(resource)) {
            queues[resource] = []
        }
        return queues[resource]
    }

    private List<Build> running(String job) {
        return builds.values().findAll { Build other -> other.job == job && other.running }.toList()
    }
}
