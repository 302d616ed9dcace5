/**
 * mlciShadowReport: the shadow report of ENV (`mlci shadow report --env ENV`): how the candidate
 * in ENV answers the live traffic production mirrors to it. Needs a node with mlci set up
 * (mlciSetup); binds the MLflow credentials as the other steps do.
 *
 * Parameters (defaults in brackets):
 *   env            the environment receiving the mirror [staging]
 *   config         mlci config file [env.MLCI_CONFIG or mlci.yaml]
 *   sshCredentialsId  the SSH credential of remote Docker hosts, for this command only
 *                  (mlciSshCredentials) [env.MLCI_SSH_CREDENTIALS_ID or none]
 *
 * Returns the parsed reports/shadow-<env>.json (a plain Map: env, source, share, on, candidate_version,
 * production_version, comparison, summary), or null when no environment mirrors its traffic to ENV
 * (mlci exits 2 saying so). Any other failure fails the step with mlciCommand's message.
 *
 * Example:
 *   Map shadow = node('linux') { checkout scm; mlciSetup(); mlciShadowReport(env: 'staging') }
 */
def call(Map config = [:]) {
    Map c = [env: 'staging', config: env.MLCI_CONFIG ?: 'mlci.yaml', sshCredentialsId: env.MLCI_SSH_CREDENTIALS_ID ?: ''] +
        config
    if (!c.env) {
        error("mlciShadowReport: missing required parameter 'env' (the environment receiving the mirror)")
    }
    String report = "reports/shadow-${c.env}.json"
    // "Not configured" is mlci's exit 2 with this message: the script turns it into exit 0 without a
    // report (any stale report removed first), so the step can return null; other exits keep their meaning.
    String script = '''rm -f "reports/shadow-$MLCI_SHADOW_ENV.json"
out=$("$MLCI_BIN" shadow report --env "$MLCI_SHADOW_ENV" 2>&1)
status=$?
printf '%s\\n' "$out"
if [ "$status" -eq 2 ] && printf '%s' "$out" | grep -q 'no environment mirrors its traffic to'; then
  echo "mlci shadow report: no shadow traffic configured for $MLCI_SHADOW_ENV"
  exit 0
fi
exit "$status"'''
    int status = mlciSshCredentials(credentialsId: c.sshCredentialsId) {
        mlciCommand(c + [command: "shadow report --env ${c.env}", script: script,
            vars: ["MLCI_SHADOW_ENV=${c.env}"], mlflow: true])
    } as int
    if (status != 0) {
        error("mlci shadow report --env ${c.env} failed (exit ${status}); see the log above.")
    }
    // returnPojo: plain Map/List with Java null (json-lib's JSONNull would be truthy).
    return fileExists(report) ? readJSON(file: report, returnPojo: true) : null
}
