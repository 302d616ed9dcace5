#!/usr/bin/env bash
# mlci setup: creates the workspace virtualenv (.venv) from the lock file, cached per lock hash.
#
# The locked dependencies are installed once per agent and lock hash into
#   $MLCI_VENV_CACHE/venv-<sha256 of the lock file>
# (a marker file .mlci-lock-sha256 is written last, so a half-built cache is never reused).
# The workspace gets its own small venv (.venv) that sees the cached packages through a .pth file
# and holds only the editable install of this checkout, so two branches built on one agent never
# share an editable install.
#
# Environment (all optional):
#   MLCI_PYTHON      interpreter [python3.11]
#   MLCI_LOCK_FILE   hashed lock file [requirements/dev.txt]
#   MLCI_VENV_CACHE  cache directory [$HOME/.cache/mlci]
#   MLCI_VENV        workspace venv [.venv]
# Exit codes: 0 ready; 2 missing interpreter or lock file; 3 the package index could not be used.
set -euo pipefail

python="${MLCI_PYTHON:-python3.11}"
lock="${MLCI_LOCK_FILE:-requirements/dev.txt}"
cache="${MLCI_VENV_CACHE:-${HOME}/.cache/mlci}"
venv="${MLCI_VENV:-.venv}"

say() { printf 'mlci setup: %s\n' "$*"; }

if [ ! -f "$lock" ]; then
    say "lock file '$lock' not found in $(pwd); commit it or set lockFile." >&2
    exit 2
fi
if ! command -v "$python" >/dev/null 2>&1; then
    say "'$python' not found on this agent ($(hostname)); install Python 3.11 or set python." >&2
    exit 2
fi

hash="$(sha256sum "$lock" | cut -d' ' -f1)"
deps="${cache}/venv-${hash}"
mkdir -p "$cache"

build_deps() {
    if [ -f "$deps/.mlci-lock-sha256" ] && [ "$(cat "$deps/.mlci-lock-sha256")" = "$hash" ]; then
        say "reusing cached dependencies $deps (lock $lock sha256 $hash)"
        return 0
    fi
    say "installing locked dependencies from $lock into $deps (sha256 $hash)"
    rm -rf "$deps"
    "$python" -m venv "$deps"
    if ! "$deps/bin/python" -m pip install --disable-pip-version-check --require-hashes -r "$lock"; then
        rm -rf "$deps"
        say "pip could not install $lock (package index unreachable or a hash mismatch); see above." >&2
        exit 3
    fi
    printf '%s\n' "$hash" > "$deps/.mlci-lock-sha256"
}

# One builder per lock hash on this agent; other builds wait for it.
if command -v flock >/dev/null 2>&1; then
    exec 9>"${deps}.lock"
    flock 9
fi
build_deps

if [ ! -f "$venv/.mlci-lock-sha256" ] || [ "$(cat "$venv/.mlci-lock-sha256")" != "$hash" ]; then
    say "creating $venv on top of $deps"
    rm -rf "$venv"
    "$python" -m venv --without-pip "$venv"
    site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    deps_site="$("$deps/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    printf '%s\n' "$deps_site" > "$site/_mlci_locked_deps.pth"
    printf '%s\n' "$hash" > "$venv/.mlci-lock-sha256"
fi

say "installing this checkout (editable) into $venv"
"$deps/bin/python" -m pip --python "$venv/bin/python" install --quiet --disable-pip-version-check \
    --no-deps --no-build-isolation -e .

say "ready: $venv/bin/mlci ($("$venv/bin/python" --version 2>&1), lock sha256 $hash)"
