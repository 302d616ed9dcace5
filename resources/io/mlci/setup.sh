#!/usr/bin/env bash
# mlci setup: gives the workspace a virtualenv (.venv) with the mlci tool, cached per agent.
#
# Two sources (MLCI_SOURCE):
#   index     (teams' repositories) mlci==$MLCI_VERSION, the library's own version, from the team's
#             package index (or a directory of wheels), on top of the locked dependencies shipped
#             with the library (its requirements.txt, hashes required). Nothing is taken from the
#             checkout. The venv is built once per agent and key
#               sha256(version, python, index options, lock hash)
#             in $MLCI_VENV_CACHE/mlci-<key>, and .venv is a symlink to it.
#   checkout  (the mlci repository's own Jenkinsfile only) the checkout's lock file, then the
#             checkout itself installed editable: a workspace venv on top of cached dependencies.
# A marker file (.mlci-ready) is written last in a cached venv, so a half-built cache is never reused;
# one builder per key on an agent (flock), other builds wait for it.
# Locks are installed by install_lock.py (beside this file): uv, bootstrapped by the venv's own pip
# from the hashed installer lock (installer.txt), then `uv pip sync --require-hashes` of the lock and
# `uv pip check`: exactly the locked versions, nothing resolved, whatever is newer on the index and
# whatever pip the agent's Python ships. Files are copied from uv's cache, never linked to it.
#
# Environment (all optional):
#   MLCI_SOURCE          index | checkout [index]
#   MLCI_PYTHON          interpreter [python3.11]
#   MLCI_LOCK_FILE       hashed lock file [.mlci/requirements.txt (index), requirements/dev.txt (checkout)]
#   MLCI_INSTALLER_LOCK  hashed lock of the installer (uv) [installer.txt beside this file (index),
#                        requirements/installer.txt (checkout)]
#   MLCI_VERSION         mlci version to install (index; required there)
#   MLCI_INDEX_URL       package index [MLCI_PIP_INDEX_URL, then PIP_INDEX_URL, else pip's default]
#   MLCI_EXTRA_INDEX_URL an extra index [none]
#   MLCI_FIND_LINKS      a directory of wheels (make dist); mlci is then installed from it only
#   MLCI_VENV_CACHE      cache directory [$HOME/.cache/mlci]
#   MLCI_VENV_REUSE      false: never reuse a venv of the cache, rebuild it (mlciSetup sets it, with a
#                        private MLCI_VENV_CACHE, for the venv the tests run in (mlciTest, every build)
#                        and for pull requests from forks: code they run could change it)
#   MLCI_VENV_SCOPE      whose cache: a team's job folder (mlciSetup passes mlciJobFolder()); each
#                        scope has its own subdirectory of the cache, so a venv one team's builds ran
#                        in is never reused by another team's [none: the cache directory itself]
#   MLCI_VENV            workspace venv [.venv]
# The index source needs an index (MLCI_INDEX_URL, MLCI_PIP_INDEX_URL or PIP_INDEX_URL) or
# MLCI_FIND_LINKS: mlci==VERSION is never looked up on pypi.org, where anyone may publish an "mlci".
# Exit codes: 0 ready; 2 missing interpreter, lock file or index, or mlci==VERSION (or a locked
# package) is not on the index, or a file on the index does not have the locked hash; 3 the package
# index could not be reached.
set -euo pipefail

source_kind="${MLCI_SOURCE:-index}"
python="${MLCI_PYTHON:-python3.11}"
cache="${MLCI_VENV_CACHE:-${HOME}/.cache/mlci}"
venv="${MLCI_VENV:-.venv}"
index="${MLCI_INDEX_URL:-${MLCI_PIP_INDEX_URL:-${PIP_INDEX_URL:-}}}"
extra_index="${MLCI_EXTRA_INDEX_URL:-}"
find_links="${MLCI_FIND_LINKS:-}"
reuse="${MLCI_VENV_REUSE:-true}"
version="${MLCI_VERSION:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
installer="${here}/install_lock.py"
if [ "$source_kind" = checkout ]; then
    lock="${MLCI_LOCK_FILE:-requirements/dev.txt}"
    installer_lock="${MLCI_INSTALLER_LOCK:-requirements/installer.txt}"
else
    lock="${MLCI_LOCK_FILE:-.mlci/requirements.txt}"
    installer_lock="${MLCI_INSTALLER_LOCK:-${here}/installer.txt}"
fi

say() { printf 'mlci setup: %s\n' "$*"; }
fail() {
    local code="$1"
    shift
    say "$*" >&2
    exit "$code"
}

case "$source_kind" in
    index | checkout) ;;
    *) fail 2 "unknown source '$source_kind': use index (teams) or checkout (the mlci repository itself)" ;;
esac
if [ ! -f "$lock" ]; then
    fail 2 "lock file '$lock' not found in $(pwd); commit it (checkout) or let mlciSetup write it (index)."
fi
if [ ! -f "$installer" ] || [ ! -f "$installer_lock" ]; then
    fail 2 "the installer ($installer) or its lock ($installer_lock) is missing: mlciSetup writes both beside setup.sh (io/mlci/install_lock.py, io/mlci/installer.txt); commit requirements/installer.txt (checkout)."
fi
if ! command -v "$python" >/dev/null 2>&1; then
    fail 2 "'$python' not found on this agent ($(hostname)); install Python 3.11 or set python."
fi
if [ "$source_kind" = index ] && [ -z "$version" ]; then
    fail 2 "no mlci version given (MLCI_VERSION): mlciSetup passes the library's own version."
fi
if [ "$source_kind" = index ] && [ -z "$index" ] && [ -z "$find_links" ]; then
    fail 2 "no package index for mlci==$version: set indexUrl (or MLCI_PIP_INDEX_URL / PIP_INDEX_URL) to the team's index, or findLinks to a directory of wheels; mlci is never installed from pypi.org."
fi

# Index options shared by every pip call; the team's index never comes from the checkout.
index_args=()
if [ -n "$index" ]; then index_args+=(--index-url "$index"); fi
if [ -n "$extra_index" ]; then index_args+=(--extra-index-url "$extra_index"); fi

# Index URLs may carry credentials (https://user:token@host/simple): never print them.
shown() { printf '%s' "$1" | sed -E 's#://[^/@]+@#://***@#'; }

# answers URL: does the index answer HTTP at all (any status)? pip says "no matching distribution"
# both when the index lacks a version and when it cannot be reached, so ask the index itself.
answers() {
    "$python" - "$1" <<'PY'
import sys
import urllib.error
import urllib.parse
import urllib.request

parts = urllib.parse.urlsplit(sys.argv[1])
url = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")).geturl()
try:
    urllib.request.urlopen(url, timeout=15)
except urllib.error.HTTPError:
    pass  # it answered (401, 404, ...)
except Exception as error:  # noqa: BLE001 - any other failure means it did not answer
    print(f"mlci setup: {url} does not answer: {error}", file=sys.stderr)
    sys.exit(1)
PY
}

# pip_or_exit LOG WHAT NETWORK ARGS...: runs pip; on failure tells "not on the index" (2) from
# "unreachable" (3); NETWORK=no (wheels from a directory only) is always 2.
pip_or_exit() {
    local log="$1" what="$2" network="$3"
    shift 3
    if "$@" >"$log" 2>&1; then
        return 0
    fi
    cat "$log" >&2
    local probe="${index:-https://pypi.org/simple/}"
    local where
    where="$(shown "${index:-the default index}")"
    if [ -n "$find_links" ]; then where="$where, wheels in $find_links"; fi
    if [ "$network" = yes ] && ! answers "$probe"; then
        fail 3 "pip could not install $what: the package index ($where) is unreachable from $(hostname) (proxy, DNS, credentials); see above."
    fi
    fail 2 "$what is not available as locked ($where): publish it (make dist, then upload the wheel) or fix indexUrl/findLinks; see above."
}

# installer_or_exit LOG WHAT ARGS...: runs install_lock.py, which tells an unreachable index (3) from a
# locked package the index lacks or a file whose hash is not the lock's (2) itself, and says which.
installer_or_exit() {
    local log="$1" what="$2" status=0
    shift 2
    "$@" >"$log" 2>&1 || status=$?
    if [ "$status" = 0 ]; then
        return 0
    fi
    cat "$log" >&2
    local where
    where="$(shown "${index:-the default index}")"
    if [ "$status" = 3 ]; then
        fail 3 "could not install $what: the package index ($where) is unreachable from $(hostname) (proxy, DNS, credentials); see above."
    fi
    fail 2 "$what could not be installed as locked from $where (see above: a locked package missing there, or a file whose hash is not the lock's): mirror the locked versions or fix indexUrl."
}

# wait_for_lock VENV: takes the lock on fd 9 (one builder per venv on this agent), saying so when another
# build holds it, so a build that waits minutes here does not look hung.
wait_for_lock() {
    command -v flock >/dev/null 2>&1 || return 0
    if ! flock -n 9; then
        say "waiting for another build preparing this venv ($1) on $(hostname)"
        flock 9
    fi
}

# cached_venv DIR KEY REUSING BUILDING INSTALL: makes DIR a ready venv of the cache, the one way both
# sources build theirs. One builder per DIR on this agent (flock on DIR.lock); a ready DIR (marker
# .mlci-ready, written last, holding KEY) is reused unless MLCI_VENV_REUSE=false; otherwise DIR is
# rebuilt from scratch by the function INSTALL, called as `INSTALL DIR LOG`, and removed if anything
# fails on the way, so a half-built venv is never reused. REUSING and BUILDING are what is said.
cached_venv() {
    local dir="$1" key="$2" reusing="$3" building="$4" install="$5"
    exec 9>"${dir}.lock"
    wait_for_lock "$dir"
    if [ "$reuse" != false ] && [ -f "$dir/.mlci-ready" ]; then
        say "$reusing"
        touch "$dir" # last used now: what a cache pruning job goes by (docs/jenkins.md)
        return 0
    fi
    say "$building"
    rm -rf "$dir"
    "$python" -m venv "$dir"
    # DIR expanded now: the trap is global and must not depend on this function's locals.
    trap "rm -rf $(printf '%q' "$dir")" ERR EXIT
    "$install" "$dir" "${dir}.log"
    printf '%s\n' "$key" >"$dir/.mlci-ready"
    trap - ERR EXIT
}

# install_locked DIR LOG: the lock's dependencies, exactly as locked (hashes required), into the venv DIR.
# Copied, not linked from uv's cache: what a build changes in its venv never reaches the cache.
install_locked() {
    installer_or_exit "$2" "the locked dependencies ($lock)" \
        "$python" "$installer" --venv "$1" --lock "$lock" --installer-lock "$installer_lock" --link-mode copy \
        ${index_args[@]+"${index_args[@]}"}
}

# install_mlci DIR LOG (index source): the locked dependencies, then mlci==$version alone, and checks it starts.
install_mlci() {
    local built="$1" log="$2" network
    local mlci_from=()
    install_locked "$built" "$log"
    if [ -n "$find_links" ]; then
        # Only the given wheels: a package of the same name on a public index is never picked.
        mlci_from=(--no-index --find-links "$find_links")
        network=no
    else
        mlci_from=(${index_args[@]+"${index_args[@]}"})
        network=yes
    fi
    pip_or_exit "$log" "mlci==$version" "$network" \
        "$built/bin/python" -m pip install --disable-pip-version-check --no-deps ${mlci_from[@]+"${mlci_from[@]}"} "mlci==$version"
    if ! "$built/bin/mlci" --version >"$log" 2>&1; then
        cat "$log" >&2
        fail 2 "mlci==$version installed but does not start (see above): its wheel or the library's lock is broken."
    fi
    rm -f "$log" # kept only when something failed
}

lock_hash="$(sha256sum "$lock" | cut -d' ' -f1)"
python_id="$("$python" -c 'import sys; print(sys.version.split()[0], sys.executable)')"
if [ -n "${MLCI_VENV_SCOPE:-}" ]; then
    # A subdirectory per team folder, named by a hash (a folder name may hold any character).
    scope_id="$(printf '%s' "$MLCI_VENV_SCOPE" | sha256sum | cut -c1-12)"
    cache="${cache}/scope-${scope_id}"
    say "venv cache of ${MLCI_VENV_SCOPE}: ${cache}"
fi
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)" # absolute: .venv links to it

if [ "$source_kind" = index ]; then
    key="$(printf '%s\n' "mlci $version" "python $python_id" "index $index" "extra $extra_index" \
        "links $find_links" "lock $lock_hash" | sha256sum | cut -d' ' -f1)"
    built="${cache}/mlci-${version}-${key:0:16}"
    cached_venv "$built" "$key" "reusing $built (mlci $version, lock sha256 $lock_hash)" \
        "building $built: locked dependencies from $lock, then mlci==$version" install_mlci
    # The cached venv is never changed once ready: the workspace only points at it.
    rm -rf "$venv"
    ln -s "$built" "$venv"
    from="${find_links:-$(shown "${index:-the default index}")}"
    say "ready: $venv/bin/mlci (mlci $version from $from, $("$venv/bin/python" --version 2>&1))"
    exit 0
fi

# checkout: the mlci repository's own Jenkinsfile (the code under test is the checkout itself).
deps="${cache}/venv-${lock_hash}"
cached_venv "$deps" "$lock_hash" "reusing cached dependencies $deps (lock $lock sha256 $lock_hash)" \
    "installing locked dependencies from $lock into $deps (sha256 $lock_hash)" install_locked

if [ -L "$venv" ] || [ ! -f "$venv/.mlci-lock-sha256" ] || [ "$(cat "$venv/.mlci-lock-sha256")" != "$lock_hash" ]; then
    say "creating $venv on top of $deps"
    rm -rf "$venv"
    "$python" -m venv --without-pip "$venv"
    site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    deps_site="$("$deps/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    printf '%s\n' "$deps_site" >"$site/_mlci_locked_deps.pth"
    printf '%s\n' "$lock_hash" >"$venv/.mlci-lock-sha256"
fi

say "installing this checkout (editable) into $venv"
"$deps/bin/python" -m pip --python "$venv/bin/python" install --quiet --disable-pip-version-check \
    --no-deps --no-build-isolation -e .

say "ready: $venv/bin/mlci ($("$venv/bin/python" --version 2>&1), lock sha256 $lock_hash)"
