#!/usr/bin/env bash
# Installs Airlock into .venv and runs the mirror on embedded defaults: SQLite and local disk
# under ./airlock-data, upstream https://huggingface.co, port 8080. AIRLOCK_* variables and
# `airlock serve` flags (passed through) change them; see deploy/airlock.env.example.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/python.sh
[ -x .venv/bin/python ] || "$AIRLOCK_PYTHON" -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check .
exec .venv/bin/airlock serve "$@"
