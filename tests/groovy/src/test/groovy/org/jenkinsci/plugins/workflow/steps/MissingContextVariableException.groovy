package org.jenkinsci.plugins.workflow.steps

/**
 * Test stand-in for what a step that needs a workspace fails with where there is none: outside any
 * node, or once the node's agent is gone (its FilePath cannot be rebuilt). Same message as Jenkins'.
 */
class MissingContextVariableException extends Exception {
    MissingContextVariableException(String typeName) {
        super("Required context class ${typeName} is missing\n".toString() +
            'Perhaps you forgot to surround the code with a step that provides this, such as: node')
    }
}
