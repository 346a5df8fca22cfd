#!/usr/bin/env bash
# The demo: coproc-bench starts a private coprocd on the bundled models, runs
# every transport in one run (bare shared-memory floor, coproc, a unix-socket
# echo server, the model in-process), prints the table and stops the daemon;
# then MiniLM on our runtime against ONNX Runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
for model in noop mlp; do
  echo "== coproc-bench compare --model $model"
  build/bin/coproc-bench compare --model "$model"
  echo
done
echo "== coproc-bench ort --model all-MiniLM-L6-v2 (batch 1, seq 128: our runtime vs ONNX Runtime)"
build/bin/coproc-bench ort --model build/models/all-MiniLM-L6-v2.onnx --batches 1 --rounds 2 --seconds 1
