package io.mlci

import org.junit.Test

/** Every step has a help page and the shape of a library step. */
class HelpPagesTest {

    static final File ROOT = LibraryTestBase.findRoot()
    static final List<String> STEPS = ['mlciSetup', 'mlciTest', 'mlciTrain', 'mlciGate', 'mlciBuild', 'mlciDeploy',
                                       'mlciApprove', 'mlciRollback', 'mlciPipeline', 'mlciPublish', 'mlciCommand', 'mlciLock',
                                       'mlciRegistryCredentials', 'mlciShadowReport', 'mlciCleanup', 'mlciBuildEnd', 'mlciLockName', 'mlciSshCredentials', 'mlciJobFolder', 'mlciPolicy']

    List<File> steps() {
        return new File(ROOT, 'vars').listFiles().findAll { it.name.endsWith('.groovy') }.sort { it.name }
    }

    @Test
    void 'the library has the steps of the issue and nothing unexpected'() {
        assert steps()*.name*.minus('.groovy').sort() == STEPS.sort()
    }

    @Test
    void 'each step has a help page with parameters, defaults and an example'() {
        steps().each { File f ->
            String name = f.name - '.groovy'
            File help = new File(ROOT, "vars/${name}.txt")
            assert help.isFile(): "vars/${name}.txt is missing"
            String text = help.text
            assert text.contains(name): "${name}.txt does not name the step"
            assert text.contains('Parameters'): "${name}.txt has no Parameters section"
            assert text.contains('Example'): "${name}.txt has no Example"
            assert text.contains("${name}("): "${name}.txt example does not call the step"
        }
    }

    @Test
    void 'each step has a doc comment and takes a map with defaults'() {
        steps().each { File f ->
            String source = f.text
            assert source.startsWith('/**'): "${f.name} has no doc comment"
            // A step takes a map with defaults; a block step (mlciLock) takes its body after it.
            assert source.contains('def call(Map config = [:])') || source.contains('def call(Map config = [:], Closure body)'):
                "${f.name}: call(Map config = [:])"
            assert source.contains('Example'): "${f.name}: doc comment without an example"
        }
    }
}
