#!/usr/bin/env python3
"""Writes the ONNX models and ONNX Runtime reference data that coproc's tests use.

Usage: make_test_models.py --out DIR

Everything is deterministic: fixed seeds, single-threaded ONNX Runtime (CPUExecutionProvider).
Models use ir_version 8 and opset 13 (op_reshape_allowzero: 14, op_softmax11: 11) because the
daemon's C++ ONNX library (1.12) reads IR <= 8 and opset <= 17.

Layout under DIR:
  noop.onnx        Identity, input "x" float32 [N, 16] (N = dim_param "N"), output "y"
  seq.onnx         y = Relu(2 * x), x and y float32 [N, L, 8]: a variable-length model (no ref data)
  mlp.onnx         256 -> 1024 -> 1024 -> 16 ranking MLP: Gemm(transB=1)+Relu twice, then Gemm;
                   input "x" [N, 256], output "y" [N, 16]
  op_*.onnx        small op-coverage models, one operator family each
  bad_garbage.onnx      not a protobuf at all
  bad_truncated.onnx    the first half of mlp.onnx
  bad_unsupported.onnx  a valid model using Cos and LSTM
  bad_checker.onnx      a model that fails onnx.checker (nodes out of topological order)
  ref/manifest.txt one block per reference case, whitespace separated:
                     case <case-id> <model-file>
                     input <name> <file> <rank> <dim>...
                     output <name> <file> <rank> <dim>...
                     end
  ref/<case-id>.in<i>.f32 and ref/<case-id>.out<j>.f32
                   raw little-endian float32, dense row-major, input i / output j in graph order.
Case ids are <model-stem>.b<batch> for models with a dynamic batch dim "N" (batches 1, 3, 8; mlp
also 32) and <model-stem> for models with fixed shapes. For example ref/mlp.b8.in0.f32 is input "x"
[8, 256] of mlp.onnx and ref/mlp.b8.out0.f32 its output "y" [8, 16].
"""

import argparse
import pathlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 8
DEFAULT_OPSET = 13
BATCHES = (1, 3, 8)
MLP_BATCHES = (1, 3, 8, 32)
FLOAT = TensorProto.FLOAT


def make_model(name, nodes, inputs, outputs, initializers=(), opset=DEFAULT_OPSET):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="coproc-make-test-models")
    model.ir_version = IR_VERSION
    if any(not o.type.tensor_type.HasField("shape") for o in model.graph.output):
        # Outputs declared without a shape get the one ONNX infers (the checker wants one).
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        for declared, known in zip(model.graph.output, inferred.graph.output):
            declared.CopyFrom(known)
    return model


def fin(name, dims):
    return helper.make_tensor_value_info(name, FLOAT, dims)


def fout(name, dims=None):
    return helper.make_tensor_value_info(name, FLOAT, dims)


def weight(rng, name, dims, scale=1.0, offset=0.0):
    data = (rng.standard_normal(dims) * scale + offset).astype(np.float32)
    return numpy_helper.from_array(data, name)


def ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def node(op, inputs, outputs, **attrs):
    return helper.make_node(op, inputs, outputs, name=f"{op.lower()}_{outputs[0]}", **attrs)


# ---------------------------------------------------------------- transport and integration models


def noop_model():
    # Moves data and computes nothing: what transport measurements run.
    return make_model("noop", [node("Identity", ["x"], ["y"])], [fin("x", ["N", 16])],
                      [fout("y", ["N", 16])])


def mlp_model(rng):
    sizes = [256, 1024, 1024, 16]
    nodes, inits = [], []
    prev = "x"
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        # He initialisation keeps the post-Relu activations O(1) through the stack.
        inits.append(weight(rng, f"w{layer}", [fan_out, fan_in], scale=np.sqrt(2.0 / fan_in)))
        inits.append(weight(rng, f"b{layer}", [fan_out], scale=0.1))
        last = layer == len(sizes) - 2
        gemm_out = "y" if last else f"g{layer}"
        nodes.append(node("Gemm", [prev, f"w{layer}", f"b{layer}"], [gemm_out], transB=1))
        if not last:
            nodes.append(node("Relu", [gemm_out], [f"h{layer}"]))
            prev = f"h{layer}"
    return make_model("mlp", nodes, [fin("x", ["N", 256])], [fout("y", ["N", 16])], inits)


def seq_model():
    # A variable-length model for the scheduler's length buckets: y = Relu(2 * x) over
    # x [N, L, 8], with both N (batch) and L (length, dim 1) dynamic.
    two = helper.make_tensor("two", FLOAT, [], [2.0])
    return make_model("seq", [node("Mul", ["x", "two"], ["d"]), node("Relu", ["d"], ["y"])],
                      [fin("x", ["N", "L", 8])], [fout("y", ["N", "L", 8])], [two])


# ---------------------------------------------------------------- op-coverage models


def binary_model(rng):
    # Every broadcasting path of the binary kernels: same shape, scalar on either side, bias row on
    # either side, both operands broadcast against each other, and the general strided case.
    inits = [
        weight(rng, "row5", [5]),
        weight(rng, "col3", [3, 1]),
        numpy_helper.from_array(np.array(1.5, dtype=np.float32), "scalar"),
        weight(rng, "den5", [5], scale=0.2, offset=2.0),  # kept away from zero for Div
        weight(rng, "mid", [3, 1, 1]),
    ]
    nodes = [
        node("Add", ["a", "col3"], ["t_add"]),          # [N,3,5] + [3,1]
        node("Sub", ["t_add", "c"], ["t_sub"]),          # [N,3,5] - [N,1,5]
        node("Mul", ["t_sub", "scalar"], ["t_mul"]),     # scalar rhs
        node("Div", ["t_mul", "den5"], ["y_div"]),       # bias row rhs
        node("Sub", ["row5", "y_div"], ["t_rsub"]),      # bias row lhs
        node("Mul", ["scalar", "t_rsub"], ["t_smul"]),   # scalar lhs
        node("Mul", ["t_smul", "t_smul"], ["y_sq"]),     # same shape, same operand twice
        node("Add", ["c", "col3"], ["y_outer"]),         # [N,1,5] + [3,1] -> [N,3,5]
        node("Sigmoid", ["a"], ["t_sig"]),
        node("Add", ["t_sig", "scalar"], ["t_den"]),     # in (1.5, 2.5)
        node("Div", ["scalar", "t_den"], ["y_rdiv"]),    # scalar lhs Div
        node("Sub", ["d", "mid"], ["y_mid"]),            # [N,3,1,7] - [3,1,1]: general strided
        node("Mul", ["d", "e"], ["y_inner"]),            # [N,3,1,7] * [4,1]: -> [N,3,4,7]
    ]
    inputs = [fin("a", ["N", 3, 5]), fin("c", ["N", 1, 5]), fin("d", ["N", 3, 1, 7]),
              fin("e", [4, 1])]
    outputs = [fout(n) for n in ("y_div", "y_sq", "y_outer", "y_rdiv", "y_mid", "y_inner")]
    return make_model("op_binary", nodes, inputs, outputs, inits)


def unary_model():
    nodes = [
        node("Relu", ["x"], ["y_relu"]),
        node("Sigmoid", ["x"], ["y_sigmoid"]),
        node("Tanh", ["x"], ["y_tanh"]),
        node("Tanh", ["y_relu"], ["t_tanh_relu"]),
        node("Sigmoid", ["t_tanh_relu"], ["y_chain"]),
    ]
    outputs = [fout(n, ["N", 37]) for n in ("y_relu", "y_sigmoid", "y_tanh", "y_chain")]
    return make_model("op_unary", nodes, [fin("x", ["N", 37])], outputs)


def softmax_model(opset):
    # opset < 13 coerces the input to 2-D at `axis` (default 1); opset >= 13 reduces along `axis`
    # (default -1). Both read the same axes so the difference shows.
    nodes = [node("Softmax", ["x"], ["y_default"])]
    for axis in (0, 1, 2, -1, -3):
        tag = f"m{-axis}" if axis < 0 else str(axis)
        nodes.append(node("Softmax", ["x"], [f"y_axis{tag}"], axis=axis))
    nodes.append(node("Softmax", ["z"], ["y_wide"], axis=1))  # inner extent 70: several chunks
    outputs = [fout(n.output[0]) for n in nodes]
    inputs = [fin("x", ["N", 3, 4, 5]), fin("z", ["N", 5, 70])]
    return make_model(f"op_softmax{opset}", nodes, inputs, outputs, opset=opset)


def flatten_model():
    nodes = [node("Flatten", ["x"], ["y_default"])]
    for axis in (0, 2, 4, -1, -3):
        tag = f"m{-axis}" if axis < 0 else str(axis)
        nodes.append(node("Flatten", ["x"], [f"y_axis{tag}"], axis=axis))
    nodes.append(node("Flatten", ["x"], ["t_flat"], axis=2))
    nodes.append(node("Relu", ["t_flat"], ["y_relu"]))  # a view feeding a computed op
    outputs = [fout(n.output[0]) for n in nodes if n.output[0].startswith("y")]
    return make_model("op_flatten", nodes, [fin("x", ["N", 2, 3, 4])], outputs)


def reshape_model():
    inits = [ints("s_keep_rest", [0, -1]), ints("s_split", [0, 3, 2, 4]), ints("s_rows", [-1, 4]),
             ints("s_back", [0, 6, 4])]
    nodes = [
        node("Reshape", ["x", "s_keep_rest"], ["y_keep_rest"]),       # [N,24]: a view of an input
        node("Reshape", ["x", "s_split"], ["y_split"]),               # [N,3,2,4]
        node("Reshape", ["x", "s_rows"], ["t_rows"]),                 # [6N,4]
        node("Tanh", ["t_rows"], ["t_tanh"]),
        node("Reshape", ["t_tanh", "s_keep_rest"], ["t_back"]),       # [6N,4]: a view of a result
        node("Reshape", ["y_keep_rest", "s_back"], ["y_roundtrip"]),  # [N,6,4]: view of a view
        node("Add", ["t_tanh", "t_rows"], ["y_sum"]),
    ]
    outputs = [fout(n) for n in ("y_keep_rest", "y_split", "y_roundtrip", "y_sum", "t_back")]
    return make_model("op_reshape", nodes, [fin("x", ["N", 6, 4])], outputs, inits)


def reshape_allowzero_model():
    # allowzero=1 makes a 0 in the shape a literal zero instead of "copy this dim"; only an empty
    # tensor can tell the two apart.
    inits = [ints("s_empty", [0, 7]), ints("s_plain", [4, -1])]
    nodes = [
        node("Reshape", ["x", "s_empty"], ["y_empty"], allowzero=1),
        node("Reshape", ["w", "s_plain"], ["t_plain"], allowzero=1),
        node("Relu", ["t_plain"], ["y_plain"]),
    ]
    return make_model("op_reshape_allowzero", nodes, [fin("x", [2, 0, 3]), fin("w", [2, 3, 4])],
                      [fout("y_empty", [0, 7]), fout("y_plain", [4, 6])], inits, opset=14)


def gemm_model(rng):
    inits = [
        weight(rng, "w_kn", [6, 5]), weight(rng, "w_nk", [5, 6]),
        weight(rng, "c_row", [5]), weight(rng, "c_row2", [1, 5]), weight(rng, "c_col", [4, 1]),
        numpy_helper.from_array(np.array(0.25, dtype=np.float32), "c_scalar"),
    ]
    nodes = [
        node("Gemm", ["x", "w_kn", "c_row"], ["y_ab"], alpha=0.5, beta=2.0),
        node("Gemm", ["x", "w_nk", "c_row2"], ["y_abt"], transB=1),
        node("Gemm", ["x", "w_kn"], ["y_noc"]),
        node("Gemm", ["xt", "w_kn", "c_col"], ["y_atb"], transA=1, beta=0.7),
        node("Gemm", ["xt", "w_nk", "c_scalar"], ["y_atbt"], transA=1, transB=1, alpha=-1.5),
        node("Gemm", ["xt", "w_kn", "y_atbt"], ["y_cfull"], transA=1, beta=0.5),  # computed C
        node("Gemm", ["xt1", "w_nk"], ["y_m1"], transA=1, transB=1),              # M == 1, transA
        node("Gemm", ["x", "w_nk", "c_row"], ["y_beta0"], transB=1, beta=0.0),
    ]
    inputs = [fin("x", ["N", 6]), fin("xt", [6, 4]), fin("xt1", [6, 1])]
    outputs = [fout(n.output[0]) for n in nodes]
    return make_model("op_gemm", nodes, inputs, outputs, inits)


def matmul_model(rng):
    inits = [weight(rng, "w", [6, 5])]
    nodes = [
        node("MatMul", ["a3", "w"], ["y_3d"]),   # [N,3,6] x [6,5]
        node("MatMul", ["a4", "w"], ["y_4d"]),   # [N,2,3,6] x [6,5]
        node("MatMul", ["a2", "w"], ["y_2d"]),   # [N,6] x [6,5]
        node("MatMul", ["p", "q"], ["y_dyn"]),   # [4,6] x [6,N]: both operands are inputs
    ]
    inputs = [fin("a3", ["N", 3, 6]), fin("a4", ["N", 2, 3, 6]), fin("a2", ["N", 6]),
              fin("p", [4, 6]), fin("q", [6, "N"])]
    return make_model("op_matmul", nodes, inputs, [fout(n.output[0]) for n in nodes], inits)


def constant_model(rng):
    c_vec = numpy_helper.from_array(rng.standard_normal([4]).astype(np.float32), "c_vec_value")
    shape = numpy_helper.from_array(np.array([-1, 2], dtype=np.int64), "shape_value")
    nodes = [
        helper.make_node("Constant", [], ["c_vec"], name="const_vec", value=c_vec),
        helper.make_node("Constant", [], ["c_half"], name="const_half", value_float=0.5),
        helper.make_node("Constant", [], ["c_shape"], name="const_shape", value=shape),
        node("Identity", ["x"], ["y_copy"]),              # graph input straight to an output
        node("Add", ["x", "c_vec"], ["t_add"]),
        node("Mul", ["t_add", "c_half"], ["t_half"]),
        node("Reshape", ["t_half", "c_shape"], ["y_reshaped"]),
        node("Identity", ["c_vec"], ["y_const"]),         # a weight as an output
        node("Relu", ["x"], ["y_relu"]),                  # output twice: directly ...
        node("Identity", ["y_relu"], ["y_relu_again"]),   # ... and through Identity
    ]
    outputs = [fout("y_copy", ["N", 4]), fout("y_reshaped"), fout("y_const", [4]),
               fout("y_relu", ["N", 4]), fout("y_relu_again", ["N", 4]), fout("x", ["N", 4])]
    return make_model("op_constant", nodes, [fin("x", ["N", 4])], outputs)


# ---------------------------------------------------------------- models the loader must refuse


def unsupported_model(rng):
    hidden = 3
    inits = [weight(rng, "lstm_w", [1, 4 * hidden, 4]),
             weight(rng, "lstm_r", [1, 4 * hidden, hidden])]
    nodes = [
        node("Cos", ["x"], ["t_cos"]),
        node("LSTM", ["t_cos", "lstm_w", "lstm_r"], ["y"], hidden_size=hidden),
    ]
    return make_model("bad_unsupported", nodes, [fin("x", [2, 1, 4])],
                      [fout("y", [2, 1, 1, hidden])], inits)


def checker_failing_model():
    # Nodes out of topological order: onnx.checker refuses the graph.
    nodes = [node("Relu", ["h"], ["y"]), node("Relu", ["x"], ["h"])]
    return make_model("bad_checker", nodes, [fin("x", [2, 4])], [fout("y", [2, 4])])


# ---------------------------------------------------------------- reference data


def dim_value(dim, batch):
    if dim.HasField("dim_value"):
        return dim.dim_value
    assert dim.dim_param == "N", f"unexpected dynamic dim {dim.dim_param}"
    return batch


def has_dynamic_dim(model):
    return any(not d.HasField("dim_value") for i in model.graph.input
               for d in i.type.tensor_type.shape.dim)


def write_cases(model, stem, rng, ref_dir, manifest, batches, scale):
    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = 1
    session_options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), session_options,
                                   providers=["CPUExecutionProvider"])
    for batch in (batches if has_dynamic_dim(model) else (None,)):
        case = stem if batch is None else f"{stem}.b{batch}"
        feeds = {}
        manifest.append(f"case {case} {stem}.onnx")
        for i, spec in enumerate(model.graph.input):
            dims = [dim_value(d, batch) for d in spec.type.tensor_type.shape.dim]
            data = (rng.standard_normal(dims) * scale).astype(np.float32)
            feeds[spec.name] = data
            name = f"{case}.in{i}.f32"
            data.astype("<f4").tofile(ref_dir / name)
            manifest.append(" ".join(["input", spec.name, name, str(len(dims))] +
                                     [str(d) for d in dims]))
        results = session.run(None, feeds)
        for j, (spec, data) in enumerate(zip(model.graph.output, results)):
            name = f"{case}.out{j}.f32"
            np.ascontiguousarray(data, dtype="<f4").tofile(ref_dir / name)
            manifest.append(" ".join(["output", spec.name, name, str(data.ndim)] +
                                     [str(d) for d in data.shape]))
        manifest.append("end")


def seeded(name):
    # Each model and input set has its own generator, so adding a model changes no other data.
    # (Python's hash() is salted per process; a weighted byte sum is stable.)
    return np.random.default_rng(sum((i + 1) * b for i, b in enumerate(name.encode())))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=pathlib.Path, help="output directory")
    args = parser.parse_args()
    out = args.out
    ref_dir = out / "ref"
    ref_dir.mkdir(parents=True, exist_ok=True)

    # (stem, model, batches, input scale): scale 4 drives sigmoid/tanh/softmax into saturation.
    good = [
        ("noop", noop_model(), BATCHES, 1.0),
        ("mlp", mlp_model(seeded("mlp")), MLP_BATCHES, 1.0),
        ("op_binary", binary_model(seeded("op_binary")), BATCHES, 1.0),
        ("op_unary", unary_model(), BATCHES, 4.0),
        ("op_softmax11", softmax_model(11), BATCHES, 4.0),
        ("op_softmax13", softmax_model(13), BATCHES, 4.0),
        ("op_flatten", flatten_model(), BATCHES, 1.0),
        ("op_reshape", reshape_model(), BATCHES, 1.0),
        ("op_reshape_allowzero", reshape_allowzero_model(), BATCHES, 1.0),
        ("op_gemm", gemm_model(seeded("op_gemm")), BATCHES, 1.0),
        ("op_matmul", matmul_model(seeded("op_matmul")), BATCHES, 1.0),
        ("op_constant", constant_model(seeded("op_constant")), BATCHES, 1.0),
    ]
    manifest = ["# generated by tools/make_test_models.py; see its docstring for the format"]
    for stem, model, batches, scale in good:
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, out / f"{stem}.onnx")
        write_cases(model, stem, seeded(stem + ".inputs"), ref_dir, manifest, batches, scale)

    # Variable-length model for the batching tests, which compute its (trivial) reference.
    seq = seq_model()
    onnx.checker.check_model(seq, full_check=True)
    onnx.save(seq, out / "seq.onnx")

    onnx.save(unsupported_model(seeded("bad_unsupported")), out / "bad_unsupported.onnx")
    onnx.save(checker_failing_model(), out / "bad_checker.onnx")
    (out / "bad_garbage.onnx").write_bytes(b"this is not an onnx model\n" * 4)
    mlp_bytes = (out / "mlp.onnx").read_bytes()
    (out / "bad_truncated.onnx").write_bytes(mlp_bytes[: len(mlp_bytes) // 2])

    (ref_dir / "manifest.txt").write_text("\n".join(manifest) + "\n")


if __name__ == "__main__":
    main()
