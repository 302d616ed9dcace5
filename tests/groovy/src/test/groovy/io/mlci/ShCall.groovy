package io.mlci

/** One recorded `sh` call: the script text, the environment it ran with, the locks held. */
class ShCall {
    String script
    String label
    Map<String, String> env
    Set<String> locks

    /** The mlci subcommand the script runs ('deploy', 'gate', ...), or null. */
    String getCommand() {
        def m = script =~ '"\\$MLCI_BIN" ([a-z]+)'
        return m.find() ? m.group(1) : null
    }

    String toString() {
        return "sh(${command ?: script.readLines()[0]}) env=${env.findAll { k, v -> k.startsWith('MLCI_') }}"
    }
}
