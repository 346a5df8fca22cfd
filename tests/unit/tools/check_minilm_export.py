#!/usr/bin/env python3
"""Checks the exported all-MiniLM-L6-v2 ONNX models against the sentence-transformers fixture.

Usage: check_minilm_export.py --fixture tests/fixtures/minilm_reference.json
                              --model build/models/all-MiniLM-L6-v2.onnx [--model ...]

For every model, ONNX Runtime (CPU) embeds every fixture sentence twice:
  - alone, a batch of one with an all-ones mask;
  - all together, one batch zero-padded to the longest sentence (ids 0, mask 0), which shows that
    padding dim 1, as the daemon's length buckets do, leaves each embedding as it was.
Each embedding must match the fixture's (produced by sentence-transformers, see
tools/make_minilm_fixture.py) to cosine >= MIN_COSINE and max |diff| <= MAX_ABS_DIFF.

Graph optimisations are off: the check runs the ops as written, the graph coprocd loads, so ONNX
Runtime's fusions cannot hide a mistake (the decomposed LayerNorm in particular would otherwise be
fused back into one kernel). Exit status 0 when every comparison passes, 1 otherwise; the worst
numbers are printed either way.
"""

import argparse
import json
import pathlib
import sys

import numpy as np
import onnxruntime as ort

MIN_COSINE = 0.99999
MAX_ABS_DIFF = 1e-4


def session(path):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def embed(sess, ids, mask):
    return sess.run(["sentence_embedding"], {"input_ids": ids, "attention_mask": mask})[0]


def padded_batch(sentences):
    longest = max(len(s["input_ids"]) for s in sentences)
    ids = np.zeros((len(sentences), longest), np.int64)
    mask = np.zeros_like(ids)
    for row, s in enumerate(sentences):
        n = len(s["input_ids"])
        ids[row, :n] = s["input_ids"]
        mask[row, :n] = 1
    return ids, mask


class Worst:
    """The worst cosine and max |diff| over a set of comparisons, and the failures."""

    def __init__(self, label):
        self.label = label
        self.cosine = 1.0
        self.abs_diff = 0.0
        self.failures = []

    def compare(self, got, want, what):
        got64, want64 = got.astype(np.float64), want.astype(np.float64)
        cosine = float(got64 @ want64 / (np.linalg.norm(got64) * np.linalg.norm(want64)))
        abs_diff = float(np.max(np.abs(got64 - want64)))
        if not np.all(np.isfinite(got)):
            cosine = abs_diff = float("nan")
        self.cosine = min(self.cosine, cosine) if np.isfinite(cosine) else cosine
        self.abs_diff = max(self.abs_diff, abs_diff) if np.isfinite(abs_diff) else abs_diff
        if not (cosine >= MIN_COSINE and abs_diff <= MAX_ABS_DIFF):
            self.failures.append(f"{what}: cosine {cosine:.9f}, max abs diff {abs_diff:.3g}")

    def report(self):
        status = "ok" if not self.failures else "FAILED"
        print(f"  {self.label:<13} worst cosine {self.cosine:.9f} (1 - cos {1 - self.cosine:.2g}), "
              f"worst max abs diff {self.abs_diff:.3g}  {status}")
        for f in self.failures:
            print(f"    {f}")
        return not self.failures


def check_interface(sess, dim):
    # The contract the daemon relies on: names, dtypes, and the dynamic dims it pads.
    got = [(t.name, t.type, t.shape) for t in sess.get_inputs() + sess.get_outputs()]
    want = [("input_ids", "tensor(int64)", ["batch", "seq"]),
            ("attention_mask", "tensor(int64)", ["batch", "seq"]),
            ("sentence_embedding", "tensor(float)", ["batch", dim])]
    if got != want:
        print(f"  interface {got}, expected {want}")
    return got == want


def check_model(path, sentences, dim):
    print(f"{path.name}:")
    sess = session(path)
    if not check_interface(sess, dim):
        return False
    single, padded = Worst("batch of 1"), Worst("padded batch")
    for i, s in enumerate(sentences):
        ids = np.array([s["input_ids"]], np.int64)
        got = embed(sess, ids, np.ones_like(ids))
        assert got.shape == (1, dim), got.shape
        single.compare(got[0], np.array(s["embedding"], np.float32), f"sentence {i}")

    ids, mask = padded_batch(sentences)
    got = embed(sess, ids, mask)
    assert got.shape == (len(sentences), dim), got.shape
    for i, s in enumerate(sentences):
        padded.compare(got[i], np.array(s["embedding"], np.float32),
                       f"sentence {i} ({len(s['input_ids'])} of {ids.shape[1]} tokens)")
    return all([single.report(), padded.report()])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixture", required=True, type=pathlib.Path)
    parser.add_argument("--model", required=True, type=pathlib.Path, action="append")
    args = parser.parse_args()

    fixture = json.loads(args.fixture.read_text(encoding="utf-8"))
    sentences = fixture["sentences"]
    dim = fixture["metadata"]["embedding_dim"]
    print(f"{len(sentences)} sentences from {args.fixture.name} "
          f"(sentence-transformers {fixture['metadata']['versions']['sentence_transformers']}); "
          f"pass: cosine >= {MIN_COSINE}, max abs diff <= {MAX_ABS_DIFF}")
    ok = all([check_model(path, sentences, dim) for path in args.model])
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
