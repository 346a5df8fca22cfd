#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_gguf (corpus/gguf) with the gguf package's GGUFWriter; the
outputs are committed, so this runs only when they should change. Each seed is a small valid
file (under 4 KB) so that mutations start from every part of the format:

  llama_tiny.gguf     a llama-shaped file: hyperparameters, tokenizer arrays, and one tensor of
                      each supported type (q8_0, q4_1, q4_0, f32, f16, bf16)
  every_value.gguf    one key of every value type and an array of every element type; version 2
  aligned_64.gguf     general.alignment 64, tensors placed at it
  unsupported.gguf    a q4_k tensor (a type the reader accepts and the loader refuses) and a q5_0
  metadata_only.gguf  keys and no tensors
  empty.gguf          the header alone

Usage: make_gguf_seeds.py [--out tests/fuzz/corpus/gguf]
"""

import argparse
import pathlib

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V
from gguf import GGUFWriter
from gguf.constants import GGML_QUANT_SIZES

MAX_SEED_BYTES = 4096


def raw_tensor(rng: np.random.Generator, qtype: Q, cols: int, rows: int) -> np.ndarray:
    """[rows, row bytes] of random blocks with finite f16 scales."""
    block_elems, block_bytes = GGML_QUANT_SIZES[qtype]
    blocks = rows * cols // block_elems
    raw = rng.integers(0, 256, size=(blocks, block_bytes), dtype=np.uint16).astype(np.uint8)
    if block_elems > 1:
        # The leading f16 fields (the scale, and the min of Q4_1 and Q4_K) small and finite; for a
        # type with a single scale, the second overwrites random quants.
        raw[:, :4] = (rng.standard_normal((blocks, 2)) / 16).astype("<f2").view(np.uint8)
    return raw.reshape(rows, -1)


def write(path: pathlib.Path, writer: GGUFWriter, version: int = 3) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    data = bytearray(path.read_bytes())
    data[4:8] = version.to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert len(data) < MAX_SEED_BYTES, f"{path.name} is {len(data)} bytes"


def llama_tiny(path: pathlib.Path, rng: np.random.Generator) -> None:
    w = GGUFWriter(str(path), arch="llama")
    w.add_block_count(1)
    w.add_embedding_length(32)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_feed_forward_length(64)
    w.add_context_length(128)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(["<s>", "</s>", "a", "b", "ab"])
    w.add_token_types([3, 3, 1, 1, 1])
    w.add_token_merges(["a b"])
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)
    w.add_add_bos_token(False)
    w.add_tensor("token_embd.weight", raw_tensor(rng, Q.Q8_0, 32, 5), raw_dtype=Q.Q8_0)
    w.add_tensor("blk.0.attn_q.weight", raw_tensor(rng, Q.Q4_1, 32, 2), raw_dtype=Q.Q4_1)
    w.add_tensor("blk.0.attn_k.weight", raw_tensor(rng, Q.Q4_0, 32, 1), raw_dtype=Q.Q4_0)
    w.add_tensor("blk.0.attn_norm.weight", rng.standard_normal(32).astype(np.float32))
    w.add_tensor("blk.0.ffn_norm.weight", rng.standard_normal(8).astype(np.float16))
    w.add_tensor("output_norm.weight", raw_tensor(rng, Q.BF16, 8, 1), raw_dtype=Q.BF16)
    write(path, w)


def every_value(path: pathlib.Path) -> None:
    w = GGUFWriter(str(path), arch="values")
    scalars = [(V.UINT8, 200), (V.INT8, -100), (V.UINT16, 60000), (V.INT16, -30000),
               (V.UINT32, 4000000000), (V.INT32, -2000000000), (V.FLOAT32, 0.5), (V.BOOL, True),
               (V.STRING, "text"), (V.UINT64, 2**64 - 1), (V.INT64, -(2**63)), (V.FLOAT64, 1e300)]
    for vtype, value in scalars:
        w.add_key_value(f"scalar.{vtype.name.lower()}", value, vtype)
    for vtype, value in scalars:
        w.add_key_value(f"array.{vtype.name.lower()}", [value, value], V.ARRAY, sub_type=vtype)
    write(path, w, version=2)


def aligned_64(path: pathlib.Path, rng: np.random.Generator) -> None:
    w = GGUFWriter(str(path), arch="aligned")
    w.add_custom_alignment(64)
    w.add_tensor("a", rng.standard_normal(3).astype(np.float32))
    w.add_tensor("b", raw_tensor(rng, Q.Q4_1, 32, 1), raw_dtype=Q.Q4_1)
    write(path, w)


def unsupported(path: pathlib.Path, rng: np.random.Generator) -> None:
    w = GGUFWriter(str(path), arch="llama")
    w.add_tensor("blk.0.attn_q.weight", raw_tensor(rng, Q.Q4_K, 256, 1), raw_dtype=Q.Q4_K)
    w.add_tensor("blk.0.attn_k.weight", raw_tensor(rng, Q.Q5_0, 32, 1), raw_dtype=Q.Q5_0)
    write(path, w)


def metadata_only(path: pathlib.Path) -> None:
    w = GGUFWriter(str(path), arch="llama")
    w.add_name("metadata only")
    w.add_uint32("llama.block_count", 30)
    w.add_float32("llama.rope.freq_base", 100000.0)
    w.add_chat_template("{% for m in messages %}<|im_start|>{{ m['content'] }}{% endfor %}")
    write(path, w)


def empty(path: pathlib.Path) -> None:
    path.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + bytes(16))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path,
                        default=pathlib.Path(__file__).resolve().parent / "corpus" / "gguf")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(15)
    llama_tiny(args.out / "llama_tiny.gguf", rng)
    every_value(args.out / "every_value.gguf")
    aligned_64(args.out / "aligned_64.gguf", rng)
    unsupported(args.out / "unsupported.gguf", rng)
    metadata_only(args.out / "metadata_only.gguf")
    empty(args.out / "empty.gguf")


if __name__ == "__main__":
    main()
