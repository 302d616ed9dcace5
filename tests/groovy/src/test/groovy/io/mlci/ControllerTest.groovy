package io.mlci

import org.junit.Test

/**
 * The harness's controller against the plugins' rules (MilestoneStepExecution.getBuildsToCancel and
 * Listener.onCompleted of pipeline-milestone-step; LockableResourcesManager of lockable-resources),
 * so the pipeline tests that rely on it rely on what Jenkins does.
 */
class ControllerTest {

    Controller controller = new Controller()

    Controller.Build build(int number, String job = 'ml/repo/main') {
        return controller.build(job, number)
    }

    @Test
    void 'passing a milestone cancels the older builds of the job below it or at none, not the newer, not other jobs'() {
        Controller.Build b1 = build(1)
        Controller.Build b2 = build(2)
        Controller.Build b3 = build(3)
        Controller.Build b4 = build(4)
        Controller.Build otherJob = build(1, 'ml/repo/feature')
        controller.pass(b2, 10)
        controller.pass(b3, 20)

        controller.pass(b4, 20)

        // #1 (no milestone) was cancelled by #2's first milestone, #2 (10 < 20) by #3; #3 (20, not below) keeps going.
        assert b1.cancelledBy == '#2' && b1.result == 'NOT_BUILT'
        assert b2.cancelledBy == '#3'
        assert b3.running && b4.running && otherJob.running
    }

    @Test
    void 'a build reaching a milestone a newer build already passed is cancelled itself'() {
        Controller.Build b1 = build(1)
        Controller.Build b2 = build(2)
        controller.pass(b2, 20)
        // Defensive in the plugin: the store lost #1's cancellation (a controller restart), modelled by forgetting it.
        b1.cancelledBy = null
        b1.result = null

        controller.pass(b1, 10)

        assert b1.cancelledBy == '#2'
    }

    @Test
    void 'a build that ends, whatever its result, cancels the older builds up to its last milestone'() {
        Controller.Build b1 = build(1)
        Controller.Build b2 = build(2)
        Controller.Build b3 = build(3)
        controller.pass(b1, 30)
        controller.pass(b2, 10)
        controller.pass(b3, 10)

        controller.complete(b3, 'FAILURE')

        assert b2.cancelledBy == '#3'
        assert b1.running: 'past #3 last milestone'
        assert controller.events.containsAll(['completed:ml/repo/main#3:FAILURE',
            'cancelled:ml/repo/main#2:Superseded by #3'])
    }

    @Test
    void 'a lock is controller-wide: a build of any job waits, the oldest waiter gets it next'() {
        Controller.Build holder = build(1, 'team-a/x/main')
        Controller.Build waiter1 = build(5, 'team-b/y/main')
        Controller.Build waiter2 = build(7, 'team-a/x/main')
        assert controller.acquire(holder, 'r', false)
        assert !controller.acquire(waiter1, 'r', false)
        assert !controller.acquire(waiter2, 'r', false)
        assert controller.acquire(holder, 'other', false)

        controller.release(holder, 'r')

        assert controller.holds(waiter1, 'r')
        controller.release(waiter1, 'r')
        assert controller.holds(waiter2, 'r')
    }

    @Test
    void 'with inversePrecedence the newest waiter gets the lock, a cancelled waiter leaves the queue and a cancelled holder frees it'() {
        Controller.Build b1 = build(1)
        Controller.Build b2 = build(2)
        Controller.Build b3 = build(3)
        Controller.Build b4 = build(4)
        controller.acquire(b1, 'staging', true)
        controller.acquire(b2, 'staging', true)
        controller.acquire(b3, 'staging', true)
        controller.acquire(b4, 'staging', true)

        controller.complete(b4, 'ABORTED')
        controller.release(b1, 'staging')

        assert controller.holds(b3, 'staging')
        controller.pass(b3, 20)
        // #1 and #2 had no milestone: #3's cancels them; #2 leaves the queue, so nobody waits any more.
        assert b2.result == 'NOT_BUILT'
        controller.complete(b3, 'SUCCESS')
        assert !controller.owners.containsKey('staging')
    }

    @Test
    void 'the build under test waits while the other builds progress, and stops waiting when cancelled or nothing is left'() {
        Controller.Build me = build(2)
        controller.underTest = me
        Controller.Build newer = build(3)
        List<String> ran = []
        controller.elsewhere << { -> ran << 'a' }
        controller.elsewhere << { -> controller.pass(newer, 10) }
        controller.elsewhere << { -> ran << 'never' }

        assert controller.waitUntil { -> false }
        assert ran == ['a'] && me.cancelledBy == '#3' && me.running: 'the test fakes raise it in the build'
        controller.elsewhere.clear()
        me.cancelledBy = null
        assert !controller.waitUntil { -> false }
    }
}
