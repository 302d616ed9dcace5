#!/usr/bin/env bash
# Groovy side of `make test`: unit tests of the Jenkins shared library (vars/) and the root
# Jenkinsfile on Groovy 2.4.21 + JenkinsPipelineUnit 1.1 (Maven), then npm-groovy-lint on the
# Jenkinsfile and vars/. Fetches its Maven and npm dependencies itself; needs mvn, a JDK (17),
# node (20) and npm. Exits non-zero on any test failure or lint error.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

status=0

echo "== Groovy unit tests (mvn test, Groovy 2.4.21, JenkinsPipelineUnit 1.1)"
mvn -B -ntp test > target-mvn.log 2>&1
mvn_status=$?
if [ "$mvn_status" -ne 0 ]; then
    grep -E '^\[(ERROR|WARNING)\]|Tests run:|FAIL' target-mvn.log | grep -v 'Tests run:.*in io\.' | head -80
    echo "mvn test failed (exit $mvn_status); full log: tests/groovy/target-mvn.log"
    status=1
fi
# The Surefire summary line ("Tests run: N, Failures: F, Errors: E, Skipped: S").
summary="$(grep -E '^\[(INFO|ERROR|WARNING)\] Tests run: [0-9]+, Failures: [0-9]+, Errors: [0-9]+, Skipped: [0-9]+$' target-mvn.log | tail -1)"
if [ -n "$summary" ]; then
    echo "${summary#* }"
else
    echo "no Surefire summary found"
    status=1
fi
mkdir -p target && mv -f target-mvn.log target/mvn.log

echo "== npm-groovy-lint (Jenkinsfile, vars/)"
if ! npm ci --no-audit --no-fund --loglevel=error > target/npm-ci.log 2>&1; then
    cat target/npm-ci.log
    echo "npm ci failed"
    exit 1
fi
npx --no-install npm-groovy-lint --config ../../.groovylintrc.json --failon error --noserver \
    --output txt ../../Jenkinsfile ../../vars > target/lint.log 2>&1
lint_status=$?
grep -E 'error|warning' target/lint.log | grep -vE '^\s*$' | head -60
# npm-groovy-lint's summary table: Error / Warning / Info counts.
grep -E "'(Error|Warning|Info)'" target/lint.log | sed -E "s/[│┌┐└┘├┤─┬┴┼]//g; s/ +/ /g"
if [ "$lint_status" -ne 0 ]; then
    echo "lint: FAILED (exit $lint_status); full log: tests/groovy/target/lint.log"
    status=1
else
    echo "lint: no errors in Jenkinsfile and vars/"
fi
exit "$status"
