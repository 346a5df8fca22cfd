#!/usr/bin/env python3
"""A float32 forward pass of a GGUF llama-architecture model in numpy: the reference that
coproc's LLM engine's logits are checked against (issue 15).

    numpy_reference.py MODEL --ids 1,2,3 --out logits.npy
    echo '[1, 2, 3]' | numpy_reference.py MODEL --out logits.f32

Token ids come from --ids (comma-separated) or, without it, as a JSON array on stdin. They are one
sequence at positions 0, 1, ...; the logits of every position are written to --out: a .npy file
(float32, shape [n_tokens, n_vocab]) or, for any other name, raw little-endian float32 in the same
row-major order. --argmax also prints each position's argmax as a JSON array.

What it computes, all in float32 (numpy's matmul on float32 operands), with every hyperparameter
read from the file's metadata, never assumed:
  - weights dequantized with gguf.quants.dequantize (the gguf package's own reference);
  - per block: x += attn(rmsnorm(x) * attn_norm), then x += ffn(rmsnorm(x) * ffn_norm);
  - RMSNorm: x / sqrt(mean(x^2) + eps), eps = llama.attention.layer_norm_rms_epsilon;
  - RoPE on adjacent pairs (x[2i], x[2i+1]) of each head's first llama.rope.dimension_count
    dimensions, angle pos * freq_base^(-2i/n_rot): GGUF's converter permutes the Q and K rows
    so that llama.cpp's "normal" rope (not Hugging Face's half split) is the right one. The angles'
    cos and sin are computed in float64 and rounded to float32;
  - grouped-query causal attention: query head h reads key/value head h // (n_head / n_head_kv),
    scores scaled by 1/sqrt(head_dim), softmax in float32 after subtracting the row's max;
  - SwiGLU: ffn_down(silu(ffn_gate(x)) * ffn_up(x));
  - the final RMSNorm (output_norm), then output.weight, or token_embd.weight when the model ties
    them (no output.weight).
llama.cpp quantizes activations to 8 bits inside its matrix products, and this does not, so the two
agree closely but not exactly (tools/llm's notes give the measured agreement).
"""

import argparse
import json
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


class Llama:
    """The weights of a llama GGUF file, dequantized to float32, and its forward pass."""

    def __init__(self, path):
        reader = GGUFReader(path)
        self.fields = reader.fields
        arch = self._meta("general.architecture")
        if arch != "llama":
            sys.exit(f"numpy_reference: architecture '{arch}' is not llama")
        scaling = self._meta("llama.rope.scaling.type", "none")
        if scaling not in ("none", ""):
            sys.exit(f"numpy_reference: rope scaling '{scaling}' is not supported")
        self.n_layer = int(self._meta("llama.block_count"))
        self.n_embd = int(self._meta("llama.embedding_length"))
        self.n_head = int(self._meta("llama.attention.head_count"))
        self.n_head_kv = int(self._meta("llama.attention.head_count_kv", self.n_head))
        self.head_dim = int(self._meta("llama.attention.key_length", self.n_embd // self.n_head))
        self.n_rot = int(self._meta("llama.rope.dimension_count", self.head_dim))
        self.freq_base = float(self._meta("llama.rope.freq_base", 10000.0))
        self.eps = np.float32(self._meta("llama.attention.layer_norm_rms_epsilon"))
        if self.n_head % self.n_head_kv != 0:
            sys.exit(f"numpy_reference: {self.n_head} heads do not group over {self.n_head_kv}")

        tensors = {t.name: t for t in reader.tensors}

        def weight(name):
            t = tensors[name]
            return np.ascontiguousarray(dequantize(t.data, t.tensor_type), dtype=np.float32)

        self.token_embd = weight("token_embd.weight")  # [n_vocab, n_embd]
        self.output = weight("output.weight") if "output.weight" in tensors else self.token_embd
        self.output_norm = weight("output_norm.weight")
        names = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                 "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]
        self.blocks = [{n: weight(f"blk.{i}.{n}.weight") for n in names}
                       for i in range(self.n_layer)]

    def _meta(self, key, default=None):
        field = self.fields.get(key)
        if field is None:
            if default is None:
                sys.exit(f"numpy_reference: the file has no '{key}'")
            return default
        return field.contents()

    def _rmsnorm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def _rope(self, x, cos, sin):
        """x: [T, heads, head_dim]; rotates pairs (2i, 2i+1) of the first n_rot dimensions."""
        rot = x[..., :self.n_rot]
        even, odd = rot[..., 0::2], rot[..., 1::2]
        out = np.empty_like(x)
        out[..., 0:self.n_rot:2] = even * cos - odd * sin
        out[..., 1:self.n_rot:2] = even * sin + odd * cos
        out[..., self.n_rot:] = x[..., self.n_rot:]
        return out

    def forward(self, ids):
        """Logits [len(ids), n_vocab] of one sequence at positions 0 .. len(ids) - 1."""
        ids = np.asarray(ids, dtype=np.int64)
        T = len(ids)
        pos = np.arange(T, dtype=np.float64)[:, None]
        inv_freq = self.freq_base ** (-np.arange(0, self.n_rot, 2, dtype=np.float64) / self.n_rot)
        angle = pos * inv_freq[None, :]
        cos = np.cos(angle).astype(np.float32)[:, None, :]  # [T, 1, n_rot/2]
        sin = np.sin(angle).astype(np.float32)[:, None, :]
        causal = np.triu(np.full((T, T), -np.inf, dtype=np.float32), k=1)
        group = self.n_head // self.n_head_kv
        scale = np.float32(1.0 / np.sqrt(self.head_dim))

        x = self.token_embd[ids]
        for b in self.blocks:
            h = self._rmsnorm(x, b["attn_norm"])
            q = (h @ b["attn_q"].T).reshape(T, self.n_head, self.head_dim)
            k = (h @ b["attn_k"].T).reshape(T, self.n_head_kv, self.head_dim)
            v = (h @ b["attn_v"].T).reshape(T, self.n_head_kv, self.head_dim)
            q, k = self._rope(q, cos, sin), self._rope(k, cos, sin)
            k = np.repeat(k, group, axis=1)  # query head h reads kv head h // group
            v = np.repeat(v, group, axis=1)
            scores = np.einsum("thd,shd->hts", q, k) * scale + causal
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            probs = scores / scores.sum(axis=-1, keepdims=True)
            attn = np.einsum("hts,shd->thd", probs, v).reshape(T, self.n_head * self.head_dim)
            x = x + attn @ b["attn_output"].T

            h = self._rmsnorm(x, b["ffn_norm"])
            gate = h @ b["ffn_gate"].T
            up = h @ b["ffn_up"].T
            x = x + (gate / (np.float32(1) + np.exp(-gate)) * up) @ b["ffn_down"].T
        return self._rmsnorm(x, self.output_norm) @ self.output.T


def main():
    ap = argparse.ArgumentParser(description="float32 numpy forward pass of a GGUF llama model")
    ap.add_argument("model")
    ap.add_argument("--ids", help="comma-separated token ids (default: a JSON array on stdin)")
    ap.add_argument("--out", required=True, help=".npy, or raw float32 for any other name")
    ap.add_argument("--argmax", action="store_true", help="print each position's argmax")
    args = ap.parse_args()

    ids = [int(t) for t in args.ids.split(",")] if args.ids else json.load(sys.stdin)
    if not ids:
        sys.exit("numpy_reference: no token ids")
    model = Llama(args.model)
    n_vocab = model.token_embd.shape[0]
    if min(ids) < 0 or max(ids) >= n_vocab:
        sys.exit(f"numpy_reference: token ids must be in [0, {n_vocab})")
    logits = model.forward(ids).astype(np.float32)
    if args.out.endswith(".npy"):
        np.save(args.out, logits)
    else:
        logits.astype("<f4").tofile(args.out)
    if args.argmax:
        print(json.dumps(logits.argmax(axis=-1).tolist()))


if __name__ == "__main__":
    main()
