/**
 * mlciSetup: prepares the Python environment of the workspace (.venv) from the lock file,
 * cached per lock hash on the agent, so that the next steps can call .venv/bin/mlci.
 *
 * Parameters (defaults in brackets):
 *   python      interpreter used to create the venv [python3.11]
 *   lockFile    hashed requirements lock [requirements/dev.txt]
 *   venvCache   per-agent cache of locked venvs [$HOME/.cache/mlci]
 *   venv        workspace venv [.venv]
 *
 * Returns [venv: '.venv', mlci: '.venv/bin/mlci'] (the mlci path to hand to the other steps).
 *
 * Example:
 *   def tools = mlciSetup(python: 'python3.11')
 *   mlciTest(mlci: tools.mlci)
 */
def call(Map config = [:]) {
    Map c = [
        python: 'python3.11',
        lockFile: 'requirements/dev.txt',
        venvCache: '',
        venv: '.venv',
    ] + config

    writeFile(file: '.mlci/setup.sh', text: libraryResource('io/mlci/setup.sh'))
    List envVars = [
        "MLCI_PYTHON=${c.python}",
        "MLCI_LOCK_FILE=${c.lockFile}",
        "MLCI_VENV=${c.venv}",
    ]
    if (c.venvCache) {
        envVars << "MLCI_VENV_CACHE=${c.venvCache}"
    }
    int status = 0
    withEnv(envVars) {
        status = sh(script: 'bash .mlci/setup.sh', returnStatus: true, label: 'mlci setup')
    }
    if (status == 2) {
        error("mlciSetup: the agent cannot build the environment (exit 2): check that ${c.python} is " +
            "installed on this agent and that ${c.lockFile} is committed. The log above says which.")
    }
    if (status == 3) {
        error("mlciSetup: pip could not install ${c.lockFile} (exit 3): check that the package index " +
            'is reachable from this agent (proxy, PIP_INDEX_URL) and that the lock hashes are current.')
    }
    if (status != 0) {
        error("mlciSetup: setup failed with exit status ${status}; see the log above.")
    }
    return [venv: c.venv, mlci: "${c.venv}/bin/mlci".toString()]
}
