#!/usr/bin/env python3
"""Reference dequantizations for the GGUF tests (tests/unit/runtime/llm/gguf_dequant_test.cc).

The reference is the `gguf` package's `gguf.quants.dequantize`, the Python twin of ggml's. CTest
runs this script as a fixture (llm_gguf_reference) before llm_gguf_test. Writes into --out:

  dequant_cases.gguf  for each type T of f32, f16, bf16, q8_0, q4_0, q4_1 two tensors:
                        "T.blocks"    random blocks in type T, edge values first (see below)
                        "T.expected"  f32, their dequantization by the gguf package
                      f16 and bf16 hold all 65536 bit patterns, so their conversions are checked
                      exhaustively. Quantized blocks have finite scales (no inf, no NaN) and
                      include zero, negative zero, subnormal and the largest scales, negative
                      mins, and every quant value at both ends.
                      And "f32_to_f16.input" (f32) with "f32_to_f16.expected" (f16): numpy's
                      round-to-nearest-even conversion of every f16's neighbourhood (each half,
                      the midpoints between halves and the floats either side of them), of the
                      overflow and underflow boundaries, of infinities, and of random floats.
  model_rows.gguf     with --model: the first rows of some of the model's tensors, dequantized:
                        "<tensor>.rows"  f32 [cols, rows]
  model_tensors.tsv   with --model: the model's tensor table as the gguf package reads it,
                      one line per tensor: name, type name, dims (comma-separated, GGUF order),
                      absolute data offset in the file, bytes.
"""

import argparse
import pathlib

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFWriter
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

MODEL_ROWS = {"token_embd.weight": 8, "blk.0.attn_q.weight": 8}
QUANT_BLOCKS = 512  # random blocks per quantized type, after the edge blocks

# f16 bit patterns of finite scales worth checking: zeros, the smallest subnormal, a subnormal,
# the smallest normal, one, the largest finite half, and their negatives.
EDGE_SCALES = [0x0000, 0x8000, 0x0001, 0x0155, 0x0400, 0x3C00, 0x7BFF, 0xFBFF, 0xBC00, 0x8001]


def random_scales(rng: np.random.Generator, n: int) -> np.ndarray:
    """n finite f16 scales as raw bits: random sign, exponent and mantissa, never inf or NaN."""
    bits = rng.integers(0, 1 << 16, size=n, dtype=np.uint32).astype(np.uint16)
    exponent_all_ones = (bits & 0x7C00) == 0x7C00
    bits[exponent_all_ones] &= 0xFBFF  # exponent 31 (inf/NaN) becomes 30
    return bits


def quant_blocks(rng: np.random.Generator, qtype: Q) -> np.ndarray:
    """Blocks of a 32-element quantized type as raw bytes [n_blocks, block_bytes]."""
    block_bytes = GGML_QUANT_SIZES[qtype][1]
    n_scales = 2 if qtype == Q.Q4_1 else 1  # Q4_1 carries d and m; Q8_0 and Q4_0 only d
    quant_bytes = block_bytes - 2 * n_scales
    edges = len(EDGE_SCALES)
    n = edges * edges + QUANT_BLOCKS
    scales = random_scales(rng, n * n_scales).reshape(n, n_scales)
    # Every pair of edge scales (d, and m for Q4_1), then random ones.
    for i, d in enumerate(EDGE_SCALES):
        for j, m in enumerate(EDGE_SCALES):
            scales[i * edges + j, 0] = d
            if n_scales == 2:
                scales[i * edges + j, 1] = m
    quants = rng.integers(0, 256, size=(n, quant_bytes), dtype=np.uint16).astype(np.uint8)
    # Quant values at their ends: nibbles 0 (Q4_0's -8) and 15 in every byte; Q8_0's -128 and 127.
    quants[0::4] = 0x00
    quants[1::4] = 0xFF
    quants[2::4, 0::2] = 0x80
    quants[2::4, 1::2] = 0x7F
    scale_bytes = scales.astype("<u2").view(np.uint8).reshape(n, 2 * n_scales)
    return np.concatenate([scale_bytes, quants], axis=1)


def float_blocks(rng: np.random.Generator, qtype: Q) -> np.ndarray:
    """Raw bytes [n, element_bytes] of float elements."""
    if qtype in (Q.F16, Q.BF16):
        bits = np.arange(1 << 16, dtype=np.uint32).astype("<u2")
        return bits.view(np.uint8).reshape(-1, 2)
    specials = np.array([0.0, -0.0, 1.0, -1.0, np.finfo(np.float32).max, np.finfo(np.float32).tiny,
                         np.inf, -np.inf, np.nan, 1e-45], dtype="<f4")
    values = np.concatenate([specials, rng.standard_normal(4096 - len(specials)).astype("<f4")])
    return values.view(np.uint8).reshape(-1, 4)


def f32_to_f16_inputs(rng: np.random.Generator) -> np.ndarray:
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    finite = np.sort(halves[np.isfinite(halves)].astype(np.float32))
    midpoints = (finite[:-1].astype(np.float64) + finite[1:].astype(np.float64)) / 2
    midpoints = midpoints.astype(np.float32)  # exact: f16 midpoints need 12 significant bits
    bits = midpoints.view(np.uint32)
    boundaries = np.array([65504.0, 65519.996, 65520.0, 1e6, 2.0**-24, 2.0**-25, 2.0**-25 * 1.0000001,
                           2.0**-26, 1e-10, np.inf, np.nan], dtype=np.float32)
    # Random floats whose exponents span f16's range and beyond.
    rand = (rng.standard_normal(1 << 14) * np.exp2(rng.uniform(-30, 20, 1 << 14))).astype(np.float32)
    values = np.concatenate([finite, midpoints, (bits + 1).view(np.float32), (bits - 1).view(np.float32),
                             boundaries, -boundaries, rand])
    # NaN is left out: which NaN a conversion returns is not fixed (payload and sign).
    return values[~np.isnan(values)].astype("<f4")


def write_dequant_cases(path: pathlib.Path, rng: np.random.Generator) -> None:
    writer = GGUFWriter(str(path), arch="dequant_cases")
    for qtype in (Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1):
        raw = float_blocks(rng, qtype) if GGML_QUANT_SIZES[qtype][0] == 1 else quant_blocks(rng, qtype)
        # One row of every element: the row is the blocks, back to back.
        row = np.ascontiguousarray(raw.reshape(1, -1))
        expected = dequantize(row, qtype).astype(np.float32).reshape(1, -1)
        name = qtype.name.lower()
        writer.add_tensor(f"{name}.blocks", row, raw_dtype=qtype)
        writer.add_tensor(f"{name}.expected", expected)
    inputs = f32_to_f16_inputs(rng)
    writer.add_tensor("f32_to_f16.input", inputs.reshape(1, -1))
    with np.errstate(over="ignore"):  # overflowing to inf is one of the cases
        writer.add_tensor("f32_to_f16.expected", inputs.astype(np.float16).reshape(1, -1))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_model_reference(model: pathlib.Path, out: pathlib.Path) -> None:
    reader = GGUFReader(str(model))
    by_name = {t.name: t for t in reader.tensors}
    writer = GGUFWriter(str(out / "model_rows.gguf"), arch="model_rows")
    for name, rows in MODEL_ROWS.items():
        t = by_name[name]
        cols = int(t.shape[0])
        row_bytes = cols // GGML_QUANT_SIZES[t.tensor_type][0] * GGML_QUANT_SIZES[t.tensor_type][1]
        raw = np.asarray(t.data).view(np.uint8).reshape(-1)[: rows * row_bytes].reshape(rows, row_bytes)
        writer.add_tensor(f"{name}.rows", dequantize(raw, t.tensor_type).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    with open(out / "model_tensors.tsv", "w", encoding="utf-8") as f:
        for t in reader.tensors:
            dims = ",".join(str(int(d)) for d in t.shape)
            f.write(f"{t.name}\t{t.tensor_type.name.lower()}\t{dims}\t{t.data_offset}\t{t.n_bytes}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--model", type=pathlib.Path)
    parser.add_argument("--seed", type=int, default=20260115)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write_dequant_cases(args.out / "dequant_cases.gguf", np.random.default_rng(args.seed))
    if args.model is not None:
        write_model_reference(args.model, args.out)


if __name__ == "__main__":
    main()
