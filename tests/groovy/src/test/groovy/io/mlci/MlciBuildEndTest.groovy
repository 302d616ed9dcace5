package io.mlci

import org.junit.Test

/** vars/mlciBuildEnd.groovy: what ops read when a build ends badly (the Jenkinsfile's and mlciPipeline's words). */
class MlciBuildEndTest extends LibraryTestBase {

    @Test
    void 'a failure before production says production was not touched'() {
        String said = step('mlciBuildEnd', [result: 'FAILURE', stage: 'Test']) as String

        assert said == 'Build failed (last stage entered: Test): see the first error above. Production was not ' +
            'touched by this build.'
        assert log == [said]
    }

    @Test
    void 'a failure in Deploy production points at mlci status'() {
        String said = step('mlciBuildEnd', [result: 'FAILURE', stage: 'Deploy production', productionStarted: true]) as String

        assert said.startsWith('Build failed in Deploy production: see the first error above.')
        assert said.contains('`mlci status --env production`')
    }

    @Test
    void 'an interruption during Deploy production says the deploy may be cut short and how to check it'() {
        String said = step('mlciBuildEnd', [result: 'STOPPED', stage: 'Deploy production', productionStarted: true,
                                             env: 'prod-eu']) as String

        assert said.startsWith('Build stopped (aborted, timed out, or superseded by a newer build) during Deploy prod-eu')
        assert said.contains('`mlci status --env prod-eu`') && said.contains('`mlci rollback --env prod-eu`')
    }

    @Test
    void 'an abort before production says nothing was deployed'() {
        String said = step('mlciBuildEnd', [result: 'ABORTED', stage: 'Approve']) as String

        assert said == 'Build aborted (last stage entered: Approve) before mlci deploy touched production: nothing ' +
            'was deployed to production by this build.'
    }

    @Test
    void 'a superseded build says a failed newer build needs a new build, since the plugin counts it as past its milestones'() {
        String said = step('mlciBuildEnd', [result: 'NOT_BUILT', stage: 'Build images']) as String

        assert said.startsWith('Build superseded by a newer build of this branch (last stage entered: Build images) ' +
            'before mlci deploy touched production: nothing was deployed to production by this build.')
        assert said.contains("if the build that superseded this one failed, start a new build once it is fixed")
    }
}
