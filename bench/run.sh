#!/usr/bin/env bash
# Run both Airlock benchmarks (warm: cached file vs nginx; cold: first download vs the fake hub).
# Usage: bash bench/run.sh [extra args for both, e.g. --size-mb 512]
# Exit status: 0 when every target passed, 1 otherwise. Results: bench/out/{warm,cold}.json
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
status=0
"$PY" -m bench.warm "$@" || status=1
echo
# Cold, over a realistic upstream link (2 Gbit/s): the target applies here.
"$PY" -m bench.cold --upstream-mb-s 250 --rounds 3 "$@" || status=1
echo
# Cold, with the fake hub at loopback speed: shows the cost of relaying and hashing every byte
# on this machine's 2 cores; reported, not a target (see bench/README.md).
"$PY" -m bench.cold --rounds 3 "$@" || true
exit "$status"
