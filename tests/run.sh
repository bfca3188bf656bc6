#!/usr/bin/env bash
# Installs everything the checks need and runs them all: ruff, mypy and pytest.
#   .venv         Airlock's environment (Python >= 3.12) with the test extra
#   .venv-client  the user's side (Python 3.11): the real huggingface_hub client, run by the
#                 end-to-end tests as subprocesses, as on an engineer's machine, and torch,
#                 numpy, scikit-learn and transformers, which write the real checkpoints the
#                 scanner tests read
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/python.sh
CLIENT_PYTHON=${CLIENT_PYTHON:-$(find_python 11)} || {
    echo "the test client environment needs Python 3.11" >&2
    exit 1
}
pip_quiet() { "$@" --quiet --disable-pip-version-check 2>&1 | grep -v "^WARNING: Location" || true; }

# The review UI's browser tests drive Debian's Chromium through Playwright (never Playwright's own
# browser download). CI runs as root; elsewhere sudo is used when present.
if [ ! -x /usr/bin/chromium ]; then
    as_root=$([ "$(id -u)" = 0 ] || echo sudo)
    $as_root apt-get update -qq
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
[ -x .venv/bin/python ] || "$AIRLOCK_PYTHON" -m venv .venv
pip_quiet .venv/bin/pip install -e ".[test]"
[ -x .venv-client/bin/python ] || "$CLIENT_PYTHON" -m venv .venv-client
pip_quiet .venv-client/bin/pip install -r tests/client-requirements.txt
.venv/bin/python -c "import proxy, cache, addons" # the install worked

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
export AIRLOCK_CLIENT_PYTHON="$PWD/.venv-client/bin/python"
export AIRLOCK_TORCH_PYTHON="$PWD/.venv-client/bin/python"  # writes real checkpoints
exec .venv/bin/pytest "$@"
