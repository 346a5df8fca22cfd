#!/usr/bin/env python3
"""Checks tools/llm/numpy_reference.py, the float32 forward pass that the LLM engine's logits are
held to, against llama.cpp's teacher-forced fixture (tests/fixtures/llm/teacher_forced.json).

Usage: check_numpy_reference.py --reference tools/llm/numpy_reference.py
                                --fixture tests/fixtures/llm/teacher_forced.json
                                --model build/models/SmolLM2-135M-Instruct.Q4_1.gguf

It runs the script as the tests do (a child process, ids on stdin, logits to a .npy file) on the
first TOKENS tokens of a prose text and of a ChatML chat, and compares each position with the
llama.cpp fixture. The two cannot agree exactly: llama.cpp quantizes activations to 8 bits inside
its Q4_1 products and keeps K/V in f16, the reference does neither. What was measured when the
fixture was made (over all 3,839 positions): argmax agreement 96.6%, 100% where llama.cpp's top-1
leads its top-2 by >= 1.0, mean |logit difference| 0.18. So the bounds, with margin:
  - argmax agrees at >= MIN_AGREEMENT of the positions;
  - argmax agrees at every position where llama.cpp's own gap is >= DECISIVE_GAP;
  - over llama.cpp's top-5 ids, mean |logit difference| <= MAX_MEAN_ABS_DIFF.
A wrong RoPE pairing, head grouping, norm epsilon or output head fails all three by far (argmax
agreement drops below 50%).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

TOKENS = 128
TEXTS = ("prose", "chat")
MIN_AGREEMENT = 0.90
DECISIVE_GAP = 1.0
MAX_MEAN_ABS_DIFF = 0.4
MAX_SECONDS = 60  # per run of ~TOKENS tokens, as the suite runs it


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", required=True)
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--model", required=True)
    args = ap.parse_args()

    with open(args.fixture, encoding="utf-8") as f:
        cases = {c["name"]: c for c in json.load(f)["cases"]}
    failures = []
    for name in TEXTS:
        case = cases[name]
        ids = case["ids"][:TOKENS]
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "logits.npy")
            start = time.monotonic()
            subprocess.run([sys.executable, args.reference, args.model, "--out", out],
                           input=json.dumps(ids), text=True, check=True)
            seconds = time.monotonic() - start
            logits = np.load(out)
        if logits.shape != (len(ids), 49152) or logits.dtype != np.float32:
            failures.append(f"{name}: logits {logits.dtype} {logits.shape}")
            continue
        ours = logits.argmax(axis=-1)
        theirs = np.array(case["argmax"][:TOKENS])
        gap = np.array(case["gap"][:TOKENS])
        agreement = float(np.mean(ours == theirs))
        decisive_misses = [int(i) for i in np.nonzero(ours != theirs)[0] if gap[i] >= DECISIVE_GAP]
        diffs = [abs(float(logits[i, tok]) - value)
                 for i, top in enumerate(case["top5"][:TOKENS]) for tok, value in top]
        mean_diff = float(np.mean(diffs))
        print(f"{name}: {len(ids)} tokens in {seconds:.1f} s, argmax agreement {agreement:.4f}, "
              f"mean |diff| over llama.cpp's top-5 {mean_diff:.4f}, max {max(diffs):.4f}")
        if agreement < MIN_AGREEMENT:
            failures.append(f"{name}: argmax agreement {agreement:.4f} < {MIN_AGREEMENT}")
        if decisive_misses:
            failures.append(f"{name}: argmax differs where llama.cpp's gap >= {DECISIVE_GAP} at "
                            f"positions {decisive_misses}")
        if mean_diff > MAX_MEAN_ABS_DIFF:
            failures.append(f"{name}: mean |diff| {mean_diff:.4f} > {MAX_MEAN_ABS_DIFF}")
        if seconds > MAX_SECONDS:
            failures.append(f"{name}: took {seconds:.1f} s > {MAX_SECONDS} s")
    for failure in failures:
        print("FAIL " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
