#!/usr/bin/env bash
# Run the Airlock benchmarks (warm: cached file vs nginx; cold: first download vs the fake hub;
# scan_large: `airlock scan` on large files vs hashing them).
# Usage: bash bench/run.sh [extra args for warm and cold, e.g. --size-mb 512]
# Exit status: 0 when every target passed, 1 otherwise.
# Results: bench/out/{warm,cold,scan_large}.json
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
echo
# Large files: scan time and peak RSS of `airlock scan` on 4 GiB safetensors and a 1 GiB torch
# checkpoint (~2 minutes; needs 8 GiB of free disk and .venv-client for torch.save). Its sizes
# are its own, so the extra args above are not passed.
"$PY" -m bench.scan_large || status=1
exit "$status"
