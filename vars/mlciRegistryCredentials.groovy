/**
 * mlciRegistryCredentials: runs its body with an image registry's username/password credential as
 * MLCI_REGISTRY_USERNAME/PASSWORD (mlci logs in with them) and a Docker client config of this build
 * only (DOCKER_CONFIG under pwd(tmp: true)), so the password never lands in the agent's
 * ~/.docker/config.json; afterwards, even when the body fails, it logs out of every registry in
 * that config and deletes it. Used by mlciBuild (push credential) and mlciDeploy (pull credential
 * of environments on other hosts); not meant for a Jenkinsfile.
 *
 * Parameters:
 *   credentialsId  username/password credential of the registry (required)
 *   mlci           path of the mlci executable: its python reads the config to log out [.venv/bin/mlci]
 *   label          what the clean-up says in the log [mlci]
 *
 * Returns what the body returns.
 *
 * Example:
 *   int status = mlciRegistryCredentials(credentialsId: 'registry-ci') { mlciCommand(run) } as int
 */
def call(Map config = [:], Closure body) {
    Map c = [credentialsId: '', mlci: '.venv/bin/mlci', label: 'mlci'] + config
    if (!c.credentialsId) {
        error('mlciRegistryCredentials: missing required parameter credentialsId')
    }
    String dockerConfig = "${pwd(tmp: true)}/mlci-docker-config"
    String cleanup = '''\
if [ -f "$DOCKER_CONFIG/config.json" ]; then
    "$(dirname "$MLCI_BIN")/python" -c 'import json, sys; print("\\n".join(json.load(open(sys.argv[1])).get("auths", {})))' \\
        "$DOCKER_CONFIG/config.json" | while read -r host; do docker logout "$host" || true; done
fi
rm -rf "$DOCKER_CONFIG"
'''
    return withEnv(["DOCKER_CONFIG=${dockerConfig}", "MLCI_BIN=${c.mlci}"]) {
        // The log-out cannot hide the body's own failure (a lost agent, a timeout): mlciCleanup.
        return mlciCleanup(what: 'the registry log-out', cleanup: {
            sh(script: cleanup, label: "${c.label}: docker logout and remove the build's Docker config")
        }) {
            return withCredentials([usernamePassword(credentialsId: c.credentialsId,
                usernameVariable: 'MLCI_REGISTRY_USERNAME', passwordVariable: 'MLCI_REGISTRY_PASSWORD')]) {
                return body()
            }
        }
    }
}
