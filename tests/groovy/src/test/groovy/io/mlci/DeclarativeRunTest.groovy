package io.mlci

import org.junit.Before
import org.junit.Test

/**
 * The harness itself: the mistakes a real controller punishes must fail a test here too.
 * Each case runs a small Jenkinsfile written for it.
 */
class DeclarativeRunTest extends PipelineTestBase {

    @Before
    void givenRepository() {
        givenFile('mlci.yaml', 'project: iris\n')
        givenFile('reports/train.json', trainReport())
    }

    DeclarativeRun runText(String text) {
        File file = File.createTempFile('Jenkinsfile', '.groovy')
        file.deleteOnExit()
        file.text = text
        return runJenkinsfile(file.absolutePath)
    }

    Throwable failureOf(String text) {
        try {
            runText(text)
        } catch (AssertionError e) {
            return e
        }
        throw new AssertionError((Object) 'the harness accepted a Jenkinsfile it must refuse')
    }

    @Test
    void 'input inside a stage agent is a test failure'() {
        Throwable e = failureOf('''
pipeline {
    agent none
    stages {
        stage('Approve') {
            agent { label 'x' }
            steps { input(message: 'ok?') }
        }
    }
}''')
        assert e.message.contains('input inside node')
    }

    @Test
    void 'input under a top-level agent is a test failure'() {
        Throwable e = failureOf('''
pipeline {
    agent any
    stages {
        stage('Approve') {
            steps { input(message: 'ok?') }
        }
    }
}''')
        assert e.message.contains('input inside node')
    }

    @Test
    void 'a step that needs a workspace outside any node is a test failure'() {
        Throwable e = failureOf('''
pipeline {
    agent none
    stages {
        stage('Read') {
            steps { readFile('mlci.yaml') }
        }
    }
}''')
        assert e.message.contains('outside any node')
    }

    @Test
    void 'each agent is a fresh workspace: a report not unstashed is missing'() {
        DeclarativeRun run = runText('''
pipeline {
    agent none
    stages {
        stage('Train') {
            agent { label 'x' }
            steps { sh(script: '"$MLCI_BIN" train', returnStatus: true) }
        }
        stage('Use') {
            agent { label 'x' }
            steps { readJSON(file: 'reports/train.json', returnPojo: true) }
        }
    }
}''')
        assert build.result == 'FAILURE'
        assert run.failure.message.contains('reports/train.json does not exist')
        assert workspaces == 2
    }

    @Test
    void 'stash and unstash carry a report to the next agent'() {
        runText('''
pipeline {
    agent none
    stages {
        stage('Train') {
            agent { label 'x' }
            steps {
                sh(script: '"$MLCI_BIN" train', returnStatus: true)
                stash(name: 'r', includes: 'reports/*.json')
            }
        }
        stage('Use') {
            agent { label 'x' }
            steps {
                unstash('r')
                readJSON(file: 'reports/train.json', returnPojo: true)
            }
        }
    }
}''')
        assert build.result == 'SUCCESS'
    }

    @Test
    void 'unstashing a name never stashed fails the build'() {
        DeclarativeRun run = runText('''
pipeline {
    agent none
    stages {
        stage('Use') {
            agent { label 'x' }
            steps { unstash('nothing') }
        }
    }
}''')
        assert build.result == 'FAILURE'
        assert run.failure.message.contains("No such saved stash 'nothing'")
    }

    @Test
    void 'milestone ordinals must increase within a build'() {
        Throwable e = failureOf('''
pipeline {
    agent none
    stages {
        stage('A') {
            steps {
                milestone(ordinal: 20)
                milestone(ordinal: 10)
            }
        }
    }
}''')
        assert e.message.contains('ordinals must increase')
    }

    @Test
    void 'a newer build passing a later milestone while this one waits cancels it: NOT_BUILT, the rest skipped'() {
        duringApproval { -> controller.pass(otherBuild(8), 2) }
        DeclarativeRun run = runText('''
pipeline {
    agent none
    stages {
        stage('A') { steps { milestone(1) } }
        stage('B') { steps { input(message: 'go?') } }
        stage('C') { steps { echo('never') } }
    }
    post { notBuilt { echo('superseded') } }
}''')
        assert controller.events.contains('cancelled:ml/mlci/main#7:Superseded by #8')
        assert build.result == 'NOT_BUILT'
        assert run.skipped == ['C']
        assert log == ['superseded']
    }

    @Test
    void 'a lock held by a build of another job blocks until it is released, a build never released would wait forever'() {
        Controller.Build other = otherBuild(3, 'ml/other-repo/main')
        controller.acquire(other, 'shared', false)
        meanwhile { -> controller.release(other, 'shared') }
        String text = '''
pipeline {
    agent none
    stages {
        stage('A') {
            options { lock(resource: 'shared') }
            steps { echo('inside') }
        }
    }
}'''
        runText(text)
        assert events.indexOf('lock-wait:shared') < events.indexOf('lock:shared')
        assert log == ['inside']

        controller.acquire(other, 'shared', false)
        AssertionError e = null
        try {
            runText(text)
        } catch (AssertionError thrown) {
            e = thrown
        }
        assert e?.message?.contains('would wait forever at lock shared, held by ml/other-repo/main#3')
    }

    @Test
    void 'stage options wrap the agent and nested stages, beforeOptions skips without taking the lock'() {
        DeclarativeRun run = runText('''
pipeline {
    agent none
    stages {
        stage('Held') {
            options { lock(resource: 'r1', inversePrecedence: true) }
            stages {
                stage('In') {
                    agent { label 'x' }
                    steps { echo('in') }
                }
                stage('Wait') {
                    steps { echo('wait') }
                }
            }
        }
        stage('Skipped') {
            when {
                beforeOptions true
                expression { false }
            }
            options { lock(resource: 'r2') }
            steps { echo('never') }
        }
    }
}''')
        assert events.findAll { it.startsWith('lock:') || it.startsWith('unlock:') || it.startsWith('node:') ||
            it.startsWith('endnode:') } == ['lock:r1', 'node:x', 'endnode:x', 'unlock:r1']
        assert run.ran == ['Held', 'In', 'Wait']
        assert run.skipped == ['Skipped']
        assert lockCalls == [[resource: 'r1', inversePrecedence: true]]
    }
}
