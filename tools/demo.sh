#!/usr/bin/env bash
# The demo: coproc-bench starts a private coprocd on the bundled models, runs
# every transport in one run (bare shared-memory floor, coproc, a unix-socket
# echo server, the model in-process), prints the table and stops the daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
for model in noop mlp; do
  echo "== coproc-bench compare --model $model"
  build/bin/coproc-bench compare --model "$model"
  echo
done
