/**
 * mlciSetup: gives the workspace a Python environment (.venv) with the mlci tool AT THE LIBRARY'S
 * OWN VERSION (resources/io/mlci/VERSION), installed from the team's package index, never from the
 * consumer's checkout: a team's repository needs only its Jenkinsfile, mlci.yaml, data and tests.
 * The locked dependencies ship with the library (resources/io/mlci/requirements.txt), installed exactly
 * as locked by install_lock.py (uv bootstrapped from the hashed installer.txt, then `uv pip sync
 * --require-hashes`: nothing resolved, whatever is newer upstream), then `pip install --no-deps
 * mlci==<version>`. The venv is cached per agent
 * (key: version, python, index options, lock hash) and .venv points at it.
 * It first deletes reports/, so no later step reads a report of a previous build.
 *
 * Parameters (defaults in brackets):
 *   python         interpreter used to create the venv [python3.11]
 *   indexUrl       the team's package index [env.MLCI_PIP_INDEX_URL, then env.PIP_INDEX_URL]
 *   extraIndexUrl  an extra index [none]; a warning is logged: pip then takes a name from
 *                  whichever index has the highest version (dependency confusion)
 *   findLinks      a directory of wheels (built by `make dist`); mlci is then installed from it
 *                  only: for tests and air-gapped agents [none]
 *                  With source 'index', indexUrl (or its environment variables) or findLinks is
 *                  REQUIRED: `pip install mlci==<version>` must never resolve on pypi.org, where
 *                  anyone may publish a package named mlci.
 *   venvCache      per-agent cache of venvs [$HOME/.cache/mlci]. For a pull request from a fork
 *                  (env.CHANGE_FORK) the venv is private to the build instead (under
 *                  pwd(tmp: true), rebuilt every time, never shared): its test code could otherwise
 *                  change a cached venv that the next credentialed build of main runs.
 *   venv           workspace venv [.venv]
 *   isolated       a venv private to this build, like a fork's: under pwd(tmp: true), rebuilt every
 *                  time, never shared (like every venv, its files are copies, never hard links
 *                  into the installer's cache).
 *                  For code that is not trusted: mlciTest runs every branch's tests in one [false]
 *   cleanReports   delete reports/ first [true]
 *   source         'index' ['index']; 'checkout' installs the checkout itself (pip install -e .)
 *                  with its requirements/dev.txt: ONLY for the mlci repository's own Jenkinsfile
 *   lockFile       the checkout's lock, source 'checkout' only [requirements/dev.txt]
 *
 * Returns [venv: '.venv', mlci: '.venv/bin/mlci', version: '<library version>'] (the mlci path to
 * hand to the other steps). Index URLs are printed with their credentials replaced by ***.
 *
 * Example:
 *   def tools = mlciSetup(indexUrl: 'https://pypi.example.com/simple')
 *   mlciTest(mlci: tools.mlci)
 */
def call(Map config = [:]) {
    Map c = [
        source: 'index',
        python: 'python3.11',
        indexUrl: env.MLCI_PIP_INDEX_URL ?: (env.PIP_INDEX_URL ?: ''),
        extraIndexUrl: '',
        findLinks: '',
        lockFile: 'requirements/dev.txt',
        venvCache: '',
        venv: '.venv',
        isolated: false,
        cleanReports: true,
    ] + config
    if (!(c.source in ['index', 'checkout'])) {
        error("mlciSetup: source must be 'index' (teams' repositories) or 'checkout' (the mlci repository " +
            "itself), not '${c.source}'")
    }
    if (c.cleanReports) {
        // Every report a step reads must come from this build.
        dir('reports') {
            deleteDir()
        }
    }
    String version = libraryResource('io/mlci/VERSION').trim()
    if (c.source == 'index' && !c.indexUrl && !c.findLinks) {
        // Without an index pip would look for mlci==<version> on pypi.org (dependency confusion).
        error("mlciSetup: no package index for mlci ${version}: set indexUrl (or the environment variable " +
            'MLCI_PIP_INDEX_URL or PIP_INDEX_URL, e.g. as a global property) to the team\'s index, ' +
            "or findLinks to a directory of wheels. mlci is never installed from pypi.org (exit 2).")
    }
    if (c.extraIndexUrl) {
        echo("mlciSetup: warning: extraIndexUrl ${redact(c.extraIndexUrl)} mixes two indexes: pip takes each " +
            'package from whichever has the highest version; prefer one index that proxies the other.')
    }
    writeFile(file: '.mlci/setup.sh', text: libraryResource('io/mlci/setup.sh'))
    // The installer setup.sh runs (beside it) and the hashed lock of the installer itself.
    writeFile(file: '.mlci/install_lock.py', text: libraryResource('io/mlci/install_lock.py'))
    writeFile(file: '.mlci/installer.txt', text: libraryResource('io/mlci/installer.txt'))
    List envVars = [
        "MLCI_SOURCE=${c.source}",
        "MLCI_PYTHON=${c.python}",
        "MLCI_VENV=${c.venv}",
        "MLCI_VERSION=${version}",
        "MLCI_INDEX_URL=${c.indexUrl}",
        "MLCI_EXTRA_INDEX_URL=${c.extraIndexUrl}",
        "MLCI_FIND_LINKS=${c.findLinks}",
    ]
    if (c.source == 'index') {
        writeFile(file: '.mlci/requirements.txt', text: libraryResource('io/mlci/requirements.txt'))
        envVars << 'MLCI_LOCK_FILE=.mlci/requirements.txt'
    } else {
        envVars << "MLCI_LOCK_FILE=${c.lockFile}"
    }
    if (env.CHANGE_FORK || c.isolated) {
        // Untrusted code (a fork's, or any branch's tests) runs in this venv and could change it: never
        // share or reuse it, or the next credentialed build would run what it left there.
        // The tests' venv has a directory of its own: a fork's private venv (the other stages') is not it.
        String privateCache = "${pwd(tmp: true)}/${c.isolated ? 'mlci-test-venvs' : 'mlci-private-venvs'}"
        String why = env.CHANGE_FORK ? "pull request from the fork '${env.CHANGE_FORK}'" : 'isolated (tests)'
        echo("mlciSetup: ${why}: a private venv in ${privateCache}, built for this build only (the shared " +
            'per-agent cache is not used).')
        envVars << "MLCI_VENV_CACHE=${privateCache}" << 'MLCI_VENV_REUSE=false'
    } else {
        if (c.venvCache) {
            envVars << "MLCI_VENV_CACHE=${c.venvCache}"
        }
        // One cache per team folder: a venv another team's builds ran in is never this team's.
        envVars << "MLCI_VENV_SCOPE=${mlciJobFolder()}"
    }
    int status = 0
    withEnv(envVars) {
        status = sh(script: 'bash .mlci/setup.sh', returnStatus: true, label: 'mlci setup')
    }
    String what = c.source == 'index' ? "mlci ${version}" : 'this checkout'
    String from = c.findLinks ? "the wheels in ${c.findLinks}" : (redact(c.indexUrl) ?: "pip's default index")
    if (status == 2) {
        error("mlciSetup: cannot install ${what} on this agent (exit 2): " + (c.source == 'index' ?
            "check that ${c.python} is installed here and that mlci==${version} is published on ${from} " +
            '(make dist, then upload the wheel; or set indexUrl/findLinks).' :
            "check that ${c.python} is installed here and that ${c.lockFile} is committed.") +
            ' The log above says which.')
    }
    if (status == 3) {
        error("mlciSetup: the package index could not be reached (exit 3) while installing ${what}: check " +
            "that ${from} is reachable from this agent (proxy, DNS, credentials), then retry.")
    }
    if (status != 0) {
        error("mlciSetup: setup failed with exit status ${status}; see the log above.")
    }
    return [venv: c.venv, mlci: "${c.venv}/bin/mlci".toString(), version: version]
}

/** The URL with its credentials (https://user:token@host/...) replaced by ***: safe to print. */
@NonCPS
String redact(Object url) {
    return url ? String.valueOf(url).replaceAll('://[^/@]+@', '://***@') : ''
}
