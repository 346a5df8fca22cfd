#!/usr/bin/env bash
# Two builds of coproc-bench against each other, taking turns, three rounds each: the transport
# comparison on noop and mlp, and MiniLM against ONNX Runtime. For a change that must not make
# anything slower (docs/measured.md, "Before and after a change").
#
#   bench/ab_builds.sh OLD_BIN_DIR NEW_BIN_DIR MODELS_DIR OUT_DIR
#
# OLD_BIN_DIR and NEW_BIN_DIR hold each build's coproc-bench (build/bin of a worktree of each
# commit); MODELS_DIR holds all-MiniLM-L6-v2.onnx (a build's build/models). Writes one JSON file
# per run into OUT_DIR, and the CPU model into OUT_DIR/cpu.txt.
set -euo pipefail
if [ $# -ne 4 ]; then
  sed -n '2,10p' "$0" >&2
  exit 2
fi
old=$1 new=$2 models=$3 out=$4
mkdir -p "$out"
grep -m1 "model name" /proc/cpuinfo | tee "$out/cpu.txt"
for round in 1 2 3; do
  for side in old new; do
    bin=$old
    [ "$side" = new ] && bin=$new
    "$bin/coproc-bench" compare --model noop --rounds 3 --warmup-ms 300 --duration-ms 1000 --json \
      > "$out/noop_${side}_$round.json"
    "$bin/coproc-bench" compare --model mlp --rounds 3 --warmup-ms 300 --duration-ms 1000 --json \
      > "$out/mlp_${side}_$round.json"
    "$bin/coproc-bench" ort --model "$models/all-MiniLM-L6-v2.onnx" --batches 1 8 --rounds 2 \
      --seconds 1 --json > "$out/minilm_${side}_$round.json"
    echo "round $round: $side done"
  done
done
