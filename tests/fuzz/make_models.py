#!/usr/bin/env python3
"""Writes the ONNX models the fuzz targets use; the outputs are committed, so this runs only when
they should change.

Usage: make_models.py [--fuzz-dir tests/fuzz]

  models/*.onnx        the model table fuzz_request serves: noop (float [N, 16]), mlp_small
                       (Gemm + Relu, [N, 8] -> [N, 4]), embed (int64 ids [N, L] through Gather),
                       mixed (bool, float32 and int32 inputs; float32 and bool outputs), seq
                       (variable length [N, L, 8]), act (Erf, Sigmoid, Tanh, Exp, Softmax on
                       [N, 8]: the kernels that see client floats, NaN included). Ids are their
                       order in model_table().
  corpus/model/*.onnx  seeds for fuzz_model: the models above, the op-coverage and refused models
                       of tools/make_test_models.py, small graphs of every fusion pattern
                       (runtime/graph/fusion.cc) and operator family, and the ONNX backend
                       node tests the conformance suite runs (tests/conformance/allow_list), each
                       under the test's name.

Models use ir_version 8 and opset 13 (LayerNormalization: 17) like tools/make_test_models.py,
whose builders are reused rather than copied.
"""

import argparse
import pathlib
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import make_test_models as tm  # noqa: E402

NODE_TESTS = pathlib.Path("/usr/share/libonnx-testdata/data/node")
# The largest seed worth keeping: libFuzzer mutates small inputs far better than big ones.
MAX_SEED_BYTES = 16 * 1024


def vin(name, elem_type, dims):
    return helper.make_tensor_value_info(name, elem_type, dims)


def mlp_small(rng):
    inits = [tm.weight(rng, "w0", [16, 8], scale=0.5), tm.weight(rng, "b0", [16], scale=0.1),
             tm.weight(rng, "w1", [4, 16], scale=0.25), tm.weight(rng, "b1", [4], scale=0.1)]
    nodes = [tm.node("Gemm", ["x", "w0", "b0"], ["g0"], transB=1), tm.node("Relu", ["g0"], ["h0"]),
             tm.node("Gemm", ["h0", "w1", "b1"], ["y"], transB=1)]
    return tm.make_model("mlp_small", nodes, [tm.fin("x", ["N", 8])], [tm.fout("y", ["N", 4])],
                         inits)


def embed(rng):
    # Token ids index a table: the kernel that reads memory at addresses taken from input VALUES.
    inits = [tm.weight(rng, "table", [32, 8]), tm.ints("axes", [1])]
    nodes = [tm.node("Gather", ["table", "ids"], ["e"]),
             tm.node("ReduceSum", ["e", "axes"], ["y"], keepdims=0)]
    return tm.make_model("embed", nodes, [vin("ids", TensorProto.INT64, ["N", "L"])],
                         [tm.fout("y", ["N", 8])], inits)


def mixed():
    nodes = [tm.node("Cast", ["b"], ["bf"], to=TensorProto.FLOAT),
             tm.node("Where", ["cond", "a", "bf"], ["y"]),
             tm.node("Equal", ["a", "bf"], ["same"])]
    inputs = [vin("cond", TensorProto.BOOL, ["N", 4]), tm.fin("a", ["N", 4]),
              vin("b", TensorProto.INT32, ["N", 4])]
    outputs = [tm.fout("y", ["N", 4]), vin("same", TensorProto.BOOL, ["N", 4])]
    return tm.make_model("mixed", nodes, inputs, outputs)


def act():
    nodes = [tm.node("Erf", ["x"], ["e"]), tm.node("Sigmoid", ["x"], ["s"]),
             tm.node("Tanh", ["e"], ["t"]), tm.node("Exp", ["s"], ["u"]),
             tm.node("Add", ["t", "u"], ["a"]), tm.node("Softmax", ["a"], ["y"], axis=-1)]
    return tm.make_model("act", nodes, [tm.fin("x", ["N", 8])], [tm.fout("y", ["N", 8])])


def layer_norm_decomposed(rng):
    inits = [tm.weight(rng, "gamma", [8]), tm.weight(rng, "beta", [8]),
             numpy_helper.from_array(np.array(2.0, np.float32), "two"),
             numpy_helper.from_array(np.array(1e-5, np.float32), "eps")]
    nodes = [tm.node("ReduceMean", ["x"], ["mean"], axes=[-1]), tm.node("Sub", ["x", "mean"], ["d"]),
             tm.node("Pow", ["d", "two"], ["sq"]), tm.node("ReduceMean", ["sq"], ["var"], axes=[-1]),
             tm.node("Add", ["var", "eps"], ["ve"]), tm.node("Sqrt", ["ve"], ["std"]),
             tm.node("Div", ["d", "std"], ["n"]), tm.node("Mul", ["n", "gamma"], ["s"]),
             tm.node("Add", ["s", "beta"], ["y"])]
    return tm.make_model("layer_norm_decomposed", nodes, [tm.fin("x", ["N", "L", 8])],
                         [tm.fout("y", ["N", "L", 8])], inits)


def layer_norm17(rng):
    inits = [tm.weight(rng, "gamma", [8]), tm.weight(rng, "beta", [8])]
    nodes = [tm.node("LayerNormalization", ["x", "gamma", "beta"], ["y", "mean", "inv_std"],
                     axis=-1, epsilon=1e-5)]
    return tm.make_model("layer_norm17", nodes, [tm.fin("x", ["N", 3, 8])],
                         [tm.fout("y"), tm.fout("mean"), tm.fout("inv_std")], inits, opset=17)


def gelu_linear(rng):
    inits = [tm.weight(rng, "w", [16, 24]), tm.weight(rng, "b", [24]),
             numpy_helper.from_array(np.array(1.4142135, np.float32), "sqrt2"),
             numpy_helper.from_array(np.array(1.0, np.float32), "one"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half"),
             tm.weight(rng, "w2", [24, 4]), tm.weight(rng, "b2", [4])]
    nodes = [tm.node("MatMul", ["x", "w"], ["p"]), tm.node("Add", ["p", "b"], ["z"]),
             tm.node("Div", ["z", "sqrt2"], ["t"]), tm.node("Erf", ["t"], ["e"]),
             tm.node("Add", ["e", "one"], ["a"]), tm.node("Mul", ["z", "a"], ["m"]),
             tm.node("Mul", ["m", "half"], ["g"]), tm.node("MatMul", ["g", "w2"], ["p2"]),
             tm.node("Add", ["b2", "p2"], ["z2"]), tm.node("Relu", ["z2"], ["y"])]
    return tm.make_model("gelu_linear", nodes, [tm.fin("x", ["N", 5, 16])],
                         [tm.fout("y", ["N", 5, 4])], inits)


def attention_bshd():
    c = numpy_helper.from_array(np.array(2.0, np.float32), "c")
    nodes = [tm.node("Transpose", ["q"], ["qh"], perm=[0, 2, 1, 3]),
             tm.node("Transpose", ["k"], ["kt"], perm=[0, 2, 3, 1]),
             tm.node("Transpose", ["v"], ["vh"], perm=[0, 2, 1, 3]),
             tm.node("MatMul", ["qh", "kt"], ["s"]), tm.node("Div", ["s", "c"], ["sc"]),
             tm.node("Add", ["sc", "mask"], ["ms"]), tm.node("Softmax", ["ms"], ["p"], axis=-1),
             tm.node("MatMul", ["p", "vh"], ["oh"]),
             tm.node("Transpose", ["oh"], ["o"], perm=[0, 2, 1, 3])]
    inputs = [tm.fin(n, ["N", "S", 3, 4]) for n in ("q", "k", "v")] + [
        tm.fin("mask", ["N", 1, 1, "S"])]
    return tm.make_model("attention_bshd", nodes, inputs, [tm.fout("o", ["N", "S", 3, 4])], [c])


def attention_broadcast():
    c = numpy_helper.from_array(np.array(0.5, np.float32), "c")
    nodes = [tm.node("MatMul", ["q", "kt"], ["s"]), tm.node("Mul", ["c", "s"], ["sc"]),
             tm.node("Add", ["sc", "mask"], ["ms"]), tm.node("Softmax", ["ms"], ["p"], axis=-1),
             tm.node("MatMul", ["p", "v"], ["o"])]
    inputs = [tm.fin("q", ["N", 3, 5, 4]), tm.fin("kt", [1, 3, 4, 5]), tm.fin("v", [3, 5, 6]),
              tm.fin("mask", [5])]
    return tm.make_model("attention_broadcast", nodes, inputs, [tm.fout("o", ["N", 3, 5, 6])], [c])


def tensor_ops():
    # Views and data movement, with shape arithmetic done at plan time (Shape -> Gather -> Concat
    # -> Reshape), the way real exports write it.
    inits = [tm.ints("starts", [1]), tm.ints("ends", [3]), tm.ints("axes1", [1]),
             tm.ints("zero", [0]), tm.ints("minus1", [-1]), tm.ints("expand_to", [2, 1, 1, 1])]
    nodes = [tm.node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
             tm.node("Concat", ["x", "x"], ["xx"], axis=1),
             tm.node("Slice", ["xx", "starts", "ends", "axes1"], ["sl"]),
             tm.node("Unsqueeze", ["sl", "zero"], ["un"]),
             tm.node("Expand", ["un", "expand_to"], ["ex"]),
             tm.node("Squeeze", ["un", "zero"], ["sq"]),
             tm.node("Shape", ["x"], ["shp"]),
             tm.node("Gather", ["shp", "zero"], ["n"], axis=0),
             tm.node("Concat", ["n", "minus1"], ["target"], axis=0),
             tm.node("Reshape", ["xt", "target"], ["flat"]),
             tm.node("Size", ["x"], ["size"]),
             tm.node("ConstantOfShape", ["shp"], ["zeros"]),
             tm.node("Cast", ["zeros"], ["zeros_f"], to=TensorProto.FLOAT)]
    outputs = [tm.fout("ex"), tm.fout("sq"), tm.fout("flat", ["N", 12]), vin("size", TensorProto.INT64, []),
               tm.fout("zeros_f")]
    return tm.make_model("tensor_ops", nodes, [tm.fin("x", ["N", 3, 4])], outputs, inits)


def math_ops():
    axes = tm.ints("axes", [1])
    nodes = [tm.node("Erf", ["x"], ["erf"]), tm.node("Exp", ["erf"], ["exp"]),
             tm.node("Sqrt", ["exp"], ["sqrt"]), tm.node("Neg", ["sqrt"], ["neg"]),
             tm.node("Reciprocal", ["neg"], ["rec"]), tm.node("Pow", ["exp", "rec"], ["pow"]),
             tm.node("ReduceSum", ["pow", "axes"], ["rsum"], keepdims=1),
             tm.node("ReduceMax", ["x"], ["rmax"], axes=[-1]),
             tm.node("ReduceSumSquare", ["x"], ["rss"], axes=[0, 2], keepdims=0),
             tm.node("ArgMax", ["x"], ["amax"], axis=2, keepdims=0),
             tm.node("Sigmoid", ["x"], ["sig"]), tm.node("Tanh", ["x"], ["tanh"]),
             tm.node("Equal", ["sig", "tanh"], ["eq"]),
             tm.node("Where", ["eq", "sig", "rmax"], ["y"])]
    outputs = [tm.fout("rsum"), tm.fout("rss"), vin("amax", TensorProto.INT64, None),
               tm.fout("y")]
    return tm.make_model("math_ops", nodes, [tm.fin("x", ["N", 3, 5])], outputs, [axes])


def int_ops():
    nodes = [tm.node("Add", ["a", "b"], ["s"]), tm.node("Mul", ["s", "b"], ["m"]),
             tm.node("Div", ["m", "b"], ["d"]), tm.node("Sub", ["d", "a"], ["y"])]
    return tm.make_model("int_ops", nodes, [vin("a", TensorProto.INT64, ["N", 3]),
                                            vin("b", TensorProto.INT64, [1, 3])],
                         [vin("y", TensorProto.INT64, ["N", 3])])


# Served by fuzz_request, in model-id order.
def model_table(rng):
    return [("noop", tm.noop_model()), ("mlp_small", mlp_small(rng)), ("embed", embed(rng)),
            ("mixed", mixed()), ("seq", tm.seq_model()), ("act", act())]


def model_seeds(rng):
    return [
        ("op_binary", tm.binary_model(rng)), ("op_unary", tm.unary_model()),
        ("op_softmax11", tm.softmax_model(11)), ("op_softmax13", tm.softmax_model(13)),
        ("op_flatten", tm.flatten_model()), ("op_reshape", tm.reshape_model()),
        ("op_reshape_allowzero", tm.reshape_allowzero_model()), ("op_gemm", tm.gemm_model(rng)),
        ("op_matmul", tm.matmul_model(rng)), ("op_constant", tm.constant_model(rng)),
        ("bad_unsupported", tm.unsupported_model(rng)), ("bad_checker", tm.checker_failing_model()),
        ("layer_norm_decomposed", layer_norm_decomposed(rng)), ("layer_norm17", layer_norm17(rng)),
        ("gelu_linear", gelu_linear(rng)), ("attention_bshd", attention_bshd()),
        ("attention_broadcast", attention_broadcast()), ("tensor_ops", tensor_ops()),
        ("math_ops", math_ops()), ("int_ops", int_ops()),
    ]


def allow_listed_node_tests():
    names = []
    for path in sorted((REPO / "tests/conformance/allow_list").glob("*.txt")):
        for line in path.read_text().splitlines():
            word = line.split("#")[0].split()
            if word and not word[0].startswith("%"):
                names.append(word[0])
    return names


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fuzz-dir", type=pathlib.Path, default=REPO / "tests/fuzz")
    args = parser.parse_args()
    models_dir = args.fuzz_dir / "models"
    corpus = args.fuzz_dir / "corpus/model"
    models_dir.mkdir(parents=True, exist_ok=True)
    corpus.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(20240605)
    for name, model in model_table(rng):
        onnx.checker.check_model(model)
        data = model.SerializeToString()
        (models_dir / f"{name}.onnx").write_bytes(data)
        (corpus / f"{name}.onnx").write_bytes(data)
    for name, model in model_seeds(rng):
        if not name.startswith("bad_"):
            onnx.checker.check_model(model)
        (corpus / f"{name}.onnx").write_bytes(model.SerializeToString())
    (corpus / "bad_garbage.onnx").write_bytes(b"this is not a protobuf\x00\xff" * 3)
    noop = tm.noop_model().SerializeToString()
    (corpus / "bad_truncated.onnx").write_bytes(noop[: len(noop) // 2])

    for test in allow_listed_node_tests():
        model = NODE_TESTS / test / "model.onnx"
        if model.is_file() and model.stat().st_size <= MAX_SEED_BYTES:
            (corpus / f"{test}.onnx").write_bytes(model.read_bytes())


if __name__ == "__main__":
    main()
