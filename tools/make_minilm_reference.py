#!/usr/bin/env python3
"""Reference embeddings for the MiniLM parity tests (tests/integration/minilm_parity_test.cc).

Writes into --out (build/models/minilm_ref):
  manifest.txt   one line per case: <id> <source> <seq_len> <ids-file> <embedding-file>
  <id>.ids.i64   the token ids, raw little-endian int64 [seq_len] (mask: all ones)
  <id>.emb.f32   the expected sentence embedding, raw little-endian float32 [384]

Two sources:
  onnxruntime            --cases inputs of lengths spread over 8..256 tokens ([CLS] random ids
                         [SEP]), each run alone through ONNX Runtime on the same ONNX file the
                         daemon serves (its default graph optimisations).
  sentence_transformers  every sentence of the committed fixture (tests/fixtures/
                         minilm_reference.json), with the embedding the model's own reference
                         implementation produced.
"""

import argparse
import json
import pathlib

import numpy as np
import onnxruntime as ort

CLS, SEP = 101, 102


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=pathlib.Path)
    parser.add_argument("--fixture", required=True, type=pathlib.Path)
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--cases", type=int, default=120)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(args.model), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(20261122)
    lines = []

    def write(case_id: str, source: str, ids: np.ndarray, embedding: np.ndarray) -> None:
        ids.astype("<i8").tofile(args.out / f"{case_id}.ids.i64")
        embedding.astype("<f4").tofile(args.out / f"{case_id}.emb.f32")
        lines.append(f"{case_id} {source} {len(ids)} {case_id}.ids.i64 {case_id}.emb.f32")

    # Lengths cover 8..256 evenly, both ends included, in a shuffled order so that concurrent
    # submission mixes lengths inside each batch.
    lengths = np.linspace(8, 256, args.cases).round().astype(np.int64)
    rng.shuffle(lengths)
    for k, length in enumerate(lengths):
        ids = np.concatenate(([CLS], rng.integers(1000, 30000, length - 2), [SEP])).astype(np.int64)
        (embedding,) = session.run(None, {"input_ids": ids[None, :],
                                          "attention_mask": np.ones((1, length), np.int64)})
        write(f"ort{k:03d}", "onnxruntime", ids, embedding[0])

    fixture = json.loads(args.fixture.read_text())
    for k, sentence in enumerate(fixture["sentences"]):
        write(f"st{k:03d}", "sentence_transformers", np.array(sentence["input_ids"], np.int64),
              np.array(sentence["embedding"], np.float32))

    (args.out / "manifest.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
