// The OpenCL device against the CPU device, operator by operator and model by model: each case
// is a model written here (one node, or a pattern the fusion passes rewrite), run on both with the
// same seeded inputs. Floats are compared by normalised mean squared error,
// sum((gpu - cpu)^2) / sum(cpu^2), under a tolerance per operator; integers and bools must be
// equal. On PoCL in CI (label opencl); with no OpenCL platform the suite fails, saying so.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "coproc/runtime/model.h"
#include "device/cpu/cpu_session.h"
#include "device/opencl/cl_session.h"
#include "ops/ops.h"
#include "unit/runtime/onnx_test_model.h"

namespace coproc::runtime::testing {
namespace {

constexpr int64_t kOpset = 17;

// The device, opened once for the whole suite (seconds on PoCL).
std::shared_ptr<ClDevice> device() {
  static const auto opened = ClDevice::open(kernels::opencl::Selector{});
  EXPECT_TRUE(opened.ok()) << "no OpenCL device to test (CI installs PoCL, pocl-opencl-icd): "
                           << opened.error().message;
  return opened.ok() ? opened.value() : nullptr;
}

// Loads what the builder wrote, keeping the weights' original layout for the device.
std::shared_ptr<const Model> load_for_both(const ModelBuilder& builder) {
  LoadOptions options;
  options.keep_unpacked = true;
  auto model = builder.load(options);
  EXPECT_TRUE(model.ok()) << model.error().message;
  return model.ok() ? model.value() : nullptr;
}

// sum((got - want)^2) / sum(want^2), over finite pairs; a NaN or inf must match exactly.
double nmse(const std::vector<float>& got, const std::vector<float>& want, std::string* mismatch) {
  double err = 0.0, norm = 0.0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(want[i]) || !std::isfinite(got[i])) {
      const bool same = (std::isnan(want[i]) && std::isnan(got[i])) || want[i] == got[i];
      if (!same && mismatch->empty()) {
        *mismatch = "element " + std::to_string(i) + ": gpu " + std::to_string(got[i]) + ", cpu " +
                    std::to_string(want[i]);
      }
      continue;
    }
    const double d = static_cast<double>(got[i]) - want[i];
    err += d * d;
    norm += static_cast<double>(want[i]) * want[i];
  }
  return err / std::max(norm, 1e-30);
}

// Runs `model` on both devices and compares every output. split: the device runs the batch as
// two halves with overlapped transfers (ClSession::run_rows), and must have done so.
void expect_same(const std::shared_ptr<const Model>& model, const std::vector<Tensor>& inputs,
                 double tolerance, const std::string& what, bool split = false) {
  ASSERT_NE(model, nullptr) << what;
  auto dev = device();
  ASSERT_NE(dev, nullptr);
  CpuSession cpu(model);
  auto uploaded = ClModel::upload(model, dev);
  ASSERT_TRUE(uploaded.ok()) << what << ": " << uploaded.error().message;
  ClSession gpu(uploaded.value());
  if (split) gpu.set_overlap_min_bytes(0);
  auto want = run(cpu, inputs);
  ASSERT_TRUE(want.ok()) << what << " (cpu): " << want.error().message;
  auto got = run(gpu, inputs, split);
  if (split) {
    EXPECT_EQ(gpu.split_runs(), 1u) << what << ": the batch did not run as two halves";
  }
  ASSERT_TRUE(got.ok()) << what << " (gpu): " << got.error().message;
  ASSERT_EQ(got->size(), want->size());
  for (std::size_t j = 0; j < want->size(); ++j) {
    const Tensor& w = (*want)[j];
    const Tensor& g = (*got)[j];
    ASSERT_EQ(g.shape, w.shape) << what << " output " << j;
    ASSERT_EQ(g.dtype, w.dtype) << what << " output " << j;
    if (w.dtype == DType::kFloat32) {
      std::string mismatch;
      const double e = nmse(g.values<float>(), w.values<float>(), &mismatch);
      EXPECT_LE(e, tolerance) << what << " output " << j << " " << w.shape.to_string();
      EXPECT_EQ(mismatch, "") << what << " output " << j;
    } else {
      EXPECT_EQ(g.bytes, w.bytes) << what << " output " << j << " " << w.shape.to_string();
    }
  }
}

// ---------------------------------------------------------------- inputs

std::mt19937& rng() {
  static std::mt19937 r(20261123);
  return r;
}

Tensor random_f32(const std::vector<int64_t>& dims, float lo = -2.0f, float hi = 2.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<std::size_t>(shape(dims).elements()));
  for (float& x : v) x = dist(rng());
  return f32(dims, v);
}

template <class T>
std::vector<T> random_ints(int64_t n, int64_t lo, int64_t hi) {
  std::uniform_int_distribution<int64_t> dist(lo, hi);
  std::vector<T> v(static_cast<std::size_t>(n));
  for (T& x : v) x = static_cast<T>(dist(rng()));
  return v;
}

Tensor random_i64(const std::vector<int64_t>& dims, int64_t lo, int64_t hi) {
  return i64(dims, random_ints<int64_t>(shape(dims).elements(), lo, hi));
}
Tensor random_i32(const std::vector<int64_t>& dims, int64_t lo, int64_t hi) {
  return i32(dims, random_ints<int32_t>(shape(dims).elements(), lo, hi));
}
Tensor random_bool(const std::vector<int64_t>& dims) {
  return boolean(dims, random_ints<uint8_t>(shape(dims).elements(), 0, 1));
}

// ---------------------------------------------------------------- one-node cases

// Tolerances (NMSE): exact arithmetic and data movement; transcendental functions, whose
// implementations differ by a few ulp; sums and products, whose order differs.
constexpr double kExact = 1e-14;
constexpr double kMath = 1e-11;
constexpr double kSums = 1e-10;

struct Case {
  std::string op;  // the operator it covers (fused ones: coproc.*)
  std::string name;
  std::function<ModelBuilder()> build;
  std::vector<Tensor> inputs;
  double tolerance = kExact;
};

// "x0", "x1", ...; appended rather than "x" + to_string, which GCC 12 misreads as an overlapping
// memcpy (-Wrestrict) once inlined.
std::string numbered(const char* prefix, std::size_t k) {
  std::string name = prefix;
  name += std::to_string(k);
  return name;
}

// A model of one node over the given inputs (named x0, x1, ...), one output of `out_type`.
ModelBuilder one_node(const std::string& op, const std::vector<Tensor>& inputs, DType out_type,
                      const std::function<void(onnx::NodeProto&)>& attrs = {},
                      int64_t opset = kOpset, int outputs = 1) {
  ModelBuilder b(opset);
  std::vector<std::string> names;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    names.push_back(numbered("x", k));
    std::vector<int64_t> dynamic(static_cast<std::size_t>(inputs[k].shape.rank), -1);
    b.input(names.back(), inputs[k].dtype, dynamic);
  }
  std::vector<std::string> outs;
  for (int o = 0; o < outputs; ++o) {
    outs.push_back(numbered("y", static_cast<std::size_t>(o)));
    b.output(outs.back(), o == 0 ? out_type : DType::kFloat32);
  }
  onnx::NodeProto& node = b.node(op, names, outs);
  if (attrs) attrs(node);
  return b;
}

// A model of one node whose inputs after the first are weights (shapes, axes, B of a GEMM).
ModelBuilder with_weights(const std::string& op, const Tensor& x,
                          const std::vector<Tensor>& weights, DType out_type,
                          const std::function<void(onnx::NodeProto&)>& attrs = {},
                          int64_t opset = kOpset) {
  ModelBuilder b(opset);
  std::vector<int64_t> dynamic(static_cast<std::size_t>(x.shape.rank), -1);
  b.input("x", x.dtype, dynamic).output("y", out_type);
  std::vector<std::string> names = {"x"};
  for (std::size_t k = 0; k < weights.size(); ++k) {
    names.push_back(numbered("w", k));
    b.weight(names.back(), weights[k]);
  }
  onnx::NodeProto& node = b.node(op, names, {"y"});
  if (attrs) attrs(node);
  return b;
}

void add_elementwise(std::vector<Case>* cases) {
  const auto binary = [&](const std::string& op, Tensor a, Tensor b, double tol) {
    const std::string name =
        op + " " + a.shape.to_string() + " " + b.shape.to_string() + " " + dtype_name(a.dtype);
    const DType out = op == "Equal" ? DType::kBool : a.dtype;
    std::vector<Tensor> in = {a, b};
    cases->push_back({op, name, [op, in, out] { return one_node(op, in, out); }, in, tol});
  };
  for (const std::string op : {"Add", "Sub", "Mul", "Div"}) {
    binary(op, random_f32({7, 33}), random_f32({33}), kExact);
    binary(op, random_f32({1}), random_f32({5, 1, 3}), kExact);
    binary(op, random_f32({2, 3, 1, 5, 1}), random_f32({4, 1, 6}), kExact);
    binary(op, random_i64({6, 5}, -1000, 1000), random_i64({6, 1}, -3, 3),
           kExact);  // Div by 0 among them
    binary(op, random_i32({1001}, -100000, 100000), random_i32({1001}, -2, 2), kExact);
  }
  binary("Pow", random_f32({17}, 0.1f, 3.0f), random_f32({17}, -2.0f, 2.0f), kMath);
  binary("Pow", random_f32({3, 5}, 0.1f, 3.0f), f32({1}, {2.0f}), kMath);
  Tensor with_nan = random_f32({4, 9});
  {
    auto v = with_nan.values<float>();
    v[3] = std::numeric_limits<float>::quiet_NaN();
    with_nan = f32({4, 9}, v);
  }
  binary("Equal", with_nan, with_nan, kExact);
  binary("Equal", random_i64({5, 7}, 0, 2), random_i64({7}, 0, 2), kExact);
  binary("Equal", random_bool({33}), random_bool({1}), kExact);
  for (const auto& [cond, x, y] :
       {std::tuple{random_bool({3, 1}), random_f32({1, 4}), random_f32({3, 4})},
        std::tuple{random_bool({6, 5}), random_i64({6, 5}, -9, 9), random_i64({5}, -9, 9)}}) {
    std::vector<Tensor> in = {cond, x, y};
    cases->push_back({"Where", "Where " + cond.shape.to_string() + " " + dtype_name(x.dtype),
                      [in] { return one_node("Where", in, in[1].dtype); }, in, kExact});
  }
  const auto unary = [&](const std::string& op, Tensor x, double tol) {
    std::vector<Tensor> in = {x};
    cases->push_back({op, op + " " + x.shape.to_string() + " " + dtype_name(x.dtype),
                      [op, in] { return one_node(op, in, in[0].dtype); }, in, tol});
  };
  for (const std::string op : {"Erf", "Exp", "Tanh", "Sigmoid", "Relu", "Neg"}) {
    unary(op, random_f32({1000}, -8.0f, 8.0f), kMath);
    unary(op, random_f32({3, 7}), kMath);
  }
  unary("Sqrt", random_f32({513}, 0.0f, 100.0f), kMath);
  unary("Reciprocal", random_f32({2, 65}, 0.5f, 4.0f), kMath);
  unary("Neg", random_i32({31}, -100, 100), kExact);
  unary("Neg", i64({3}, {std::numeric_limits<int64_t>::min(), -1, 7}), kExact);
}

void add_casts(std::vector<Case>* cases) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor odd = f32({8}, {1.7f, -1.7f, nan, 3e10f, -3e10f, 0.0f, -0.0f, 255.9f});
  const auto cast = [&](const Tensor& x, DType to, onnx::TensorProto_DataType onnx_to) {
    std::vector<Tensor> in = {x};
    cases->push_back({"Cast", std::string("Cast ") + dtype_name(x.dtype) + " to " + dtype_name(to),
                      [in, to, onnx_to] {
                        return one_node("Cast", in, to, [onnx_to](onnx::NodeProto& n) {
                          set_int(n, "to", onnx_to);
                        });
                      },
                      in, kExact});
  };
  cast(odd, DType::kInt64, onnx::TensorProto_DataType_INT64);
  cast(odd, DType::kInt32, onnx::TensorProto_DataType_INT32);
  cast(odd, DType::kBool, onnx::TensorProto_DataType_BOOL);
  cast(random_i64({9}, -1'000'000'000'000, 1'000'000'000'000), DType::kInt32,
       onnx::TensorProto_DataType_INT32);
  cast(random_i64({9}, -5, 5), DType::kFloat32, onnx::TensorProto_DataType_FLOAT);
  cast(random_bool({7}), DType::kInt32, onnx::TensorProto_DataType_INT32);
}

void add_data_movement(std::vector<Case>* cases) {
  const auto attr_case = [&](const std::string& op, const std::string& name, std::vector<Tensor> in,
                             DType out, std::function<void(onnx::NodeProto&)> attrs) {
    cases->push_back(
        {op, name, [op, in, out, attrs] { return one_node(op, in, out, attrs); }, in, kExact});
  };
  attr_case("Transpose", "Transpose [2,3,5] perm [2,0,1]", {random_f32({2, 3, 5})}, DType::kFloat32,
            [](onnx::NodeProto& n) {
              set_ints(n, "perm", {2, 0, 1});
            });
  attr_case("Transpose", "Transpose int64 [4,7] reversed", {random_i64({4, 7}, -9, 9)},
            DType::kInt64, {});
  attr_case("Transpose", "Transpose [2,8,3,16] perm [0,2,1,3]", {random_f32({2, 8, 3, 16})},
            DType::kFloat32, [](onnx::NodeProto& n) {
              set_ints(n, "perm", {0, 2, 1, 3});
            });
  attr_case("Concat", "Concat axis 1 with an empty input",
            {random_f32({3, 2}), random_f32({3, 5}), random_f32({3, 0})}, DType::kFloat32,
            [](onnx::NodeProto& n) { set_int(n, "axis", 1); });
  attr_case("Concat", "Concat int32 axis 0", {random_i32({1, 4}, -5, 5), random_i32({2, 4}, -5, 5)},
            DType::kInt32, [](onnx::NodeProto& n) { set_int(n, "axis", 0); });

  const auto weighted = [&](const std::string& op, const std::string& name, const Tensor& x,
                            std::vector<Tensor> weights, DType out,
                            std::function<void(onnx::NodeProto&)> attrs = {}) {
    cases->push_back(
        {op,
         name,
         [op, x, weights, out, attrs] { return with_weights(op, x, weights, out, attrs); },
         {x},
         kExact});
  };
  weighted("Slice", "Slice [10,12] steps -2 and 3", random_f32({10, 12}),
           {i64({2}, {8, 1}), i64({2}, {-20, 12}), i64({2}, {0, 1}), i64({2}, {-2, 3})},
           DType::kFloat32);
  weighted("Slice", "Slice int64 [5,6,7] axis 2", random_i64({5, 6, 7}, -9, 9),
           {i64({1}, {1}), i64({1}, {-1}), i64({1}, {2})}, DType::kInt64);
  weighted("Expand", "Expand [3,1] to [2,3,4]", random_f32({3, 1}), {i64({3}, {2, 3, 4})},
           DType::kFloat32);
  weighted("Reshape", "Reshape [4,6] to [3,-1]", random_f32({4, 6}), {i64({2}, {3, -1})},
           DType::kFloat32);
  weighted("Unsqueeze", "Unsqueeze [4,6] at 0 and 3", random_f32({4, 6}), {i64({2}, {0, 3})},
           DType::kFloat32);
  weighted("Squeeze", "Squeeze [4,1,6]", random_f32({4, 1, 6}), {i64({1}, {1})}, DType::kFloat32);
  attr_case("Flatten", "Flatten [2,3,4] axis 2", {random_f32({2, 3, 4})}, DType::kFloat32,
            [](onnx::NodeProto& n) { set_int(n, "axis", 2); });
  attr_case("Identity", "Identity int64", {random_i64({5}, -3, 3)}, DType::kInt64, {});
  attr_case("Shape", "Shape", {random_f32({2, 3})}, DType::kInt64, {});
  attr_case("Size", "Size", {random_f32({2, 3})}, DType::kInt64, {});
  // Bigger than the planner folds (kFoldElementLimit), so that the device fills it.
  cases->push_back({"ConstantOfShape",
                    "ConstantOfShape [300,300] of 1.5",
                    [] {
                      ModelBuilder b(kOpset);
                      b.input("x", DType::kFloat32, {-1}).output("y", DType::kFloat32);
                      b.output("z", DType::kFloat32);
                      b.weight("s", i64({2}, {300, 300}));
                      onnx::NodeProto& n = b.node("ConstantOfShape", {"s"}, {"y"});
                      onnx::AttributeProto* a = n.add_attribute();
                      a->set_name("value");
                      a->set_type(onnx::AttributeProto_AttributeType_TENSOR);
                      a->mutable_t()->set_data_type(onnx::TensorProto_DataType_FLOAT);
                      a->mutable_t()->add_dims(1);
                      a->mutable_t()->add_float_data(1.5f);
                      b.node("Identity", {"x"}, {"z"});
                      return b;
                    },
                    {random_f32({3})},
                    kExact});
  for (const auto& [data, indices, axis] :
       {std::tuple{random_f32({10, 6}), random_i64({2, 3}, -10, 9), int64_t{0}},
        std::tuple{random_f32({4, 7, 5}), random_i32({6}, -7, 6), int64_t{1}},
        std::tuple{random_i64({9}, -50, 50), random_i64({}, -9, 8), int64_t{0}}}) {
    std::vector<Tensor> in = {data, indices};
    const int64_t a = axis;
    attr_case("Gather", "Gather " + data.shape.to_string() + " axis " + std::to_string(a), in,
              data.dtype, [a](onnx::NodeProto& n) { set_int(n, "axis", a); });
  }
}

void add_reductions(std::vector<Case>* cases) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto reduce = [&](const std::string& op, const Tensor& x, std::vector<int64_t> axes,
                          int64_t keepdims, double tol) {
    const std::string name = op + " " + x.shape.to_string() + " axes " +
                             std::to_string(axes.size()) + " keepdims " + std::to_string(keepdims);
    // ReduceSum takes its axes as an input from opset 13, the others from 18: opset 17 here.
    if (op == "ReduceSum") {
      cases->push_back({op,
                        name,
                        [op, x, axes, keepdims] {
                          return with_weights(
                              op, x, {i64({static_cast<int64_t>(axes.size())}, axes)}, x.dtype,
                              [keepdims](onnx::NodeProto& n) { set_int(n, "keepdims", keepdims); });
                        },
                        {x},
                        tol});
      return;
    }
    std::vector<Tensor> in = {x};
    cases->push_back({op, name,
                      [op, in, axes, keepdims] {
                        return one_node(op, in, in[0].dtype, [axes, keepdims](onnx::NodeProto& n) {
                          set_ints(n, "axes", axes);
                          set_int(n, "keepdims", keepdims);
                        });
                      },
                      in, tol});
  };
  for (const std::string op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceSumSquare"}) {
    reduce(op, random_f32({5, 7, 9}), {1}, 1, kSums);
    reduce(op, random_f32({5, 7, 9}), {0, 2}, 0, kSums);
    reduce(op, random_f32({3, 1000}), {-1}, 0, kSums);
  }
  reduce("ReduceSum", random_i64({4, 6}, -1000, 1000), {0}, 0, kExact);
  reduce("ReduceMax", random_i32({4, 6}, -1000, 1000), {1}, 1, kExact);
  reduce("ReduceMax", f32({2, 3}, {1.0f, nan, 2.0f, 4.0f, 3.0f, 2.0f}), {1}, 0, kExact);
  for (const auto& [x, axis, last] :
       {std::tuple{random_f32({6, 11}), int64_t{1}, int64_t{0}},
        std::tuple{f32({2, 4}, {1, 3, 3, 0, nan, 2, nan, 1}), int64_t{1}, int64_t{1}},
        std::tuple{random_i32({5, 3, 4}, 0, 3), int64_t{0}, int64_t{1}}}) {
    std::vector<Tensor> in = {x};
    const int64_t a = axis, l = last;
    cases->push_back({"ArgMax", "ArgMax " + x.shape.to_string() + " last " + std::to_string(l),
                      [in, a, l] {
                        return one_node("ArgMax", in, DType::kInt64, [a, l](onnx::NodeProto& n) {
                          set_int(n, "axis", a);
                          set_int(n, "select_last_index", l);
                        });
                      },
                      in, kExact});
  }
  for (const auto& [x, axis, opset] :
       {std::tuple{random_f32({4, 37}, -30, 30), int64_t{-1}, kOpset},
        std::tuple{random_f32({2, 3, 5}), int64_t{1}, int64_t{11}},
        std::tuple{random_f32({2, 3, 5}), int64_t{1}, kOpset}}) {
    std::vector<Tensor> in = {x};
    const int64_t a = axis;
    cases->push_back({"Softmax",
                      "Softmax " + x.shape.to_string() + " axis " + std::to_string(a) + " opset " +
                          std::to_string(opset),
                      [in, a, o = opset] {
                        return one_node(
                            "Softmax", in, DType::kFloat32,
                            [a](onnx::NodeProto& n) { set_int(n, "axis", a); }, o);
                      },
                      in, kSums});
  }
  // Rows with a large offset, as LayerNorm sees after a residual add; Mean and InvStdDev too.
  Tensor rows = random_f32({6, 50});
  {
    auto v = rows.values<float>();
    for (float& x : v) x += 1000.0f;
    rows = f32({6, 50}, v);
  }
  cases->push_back(
      {"LayerNormalization",
       "LayerNormalization [6,50] with Mean and InvStdDev",
       [rows] {
         ModelBuilder b(kOpset);
         b.input("x", DType::kFloat32, {-1, 50});
         for (const char* o : {"y", "mean", "inv"}) b.output(o, DType::kFloat32);
         b.weight("scale", random_f32({50}));
         b.weight("bias", random_f32({50}));
         set_float(b.node("LayerNormalization", {"x", "scale", "bias"}, {"y", "mean", "inv"}),
                   "epsilon", 1e-3f);
         return b;
       },
       {rows},
       kSums});
}

void add_products(std::vector<Case>* cases) {
  const auto gemm = [&](const std::string& name, const Tensor& a, const Tensor& b, const Tensor& c,
                        int64_t trans_a, int64_t trans_b, float alpha, float beta) {
    cases->push_back({"Gemm",
                      name,
                      [=] {
                        return with_weights("Gemm", a, {b, c}, DType::kFloat32,
                                            [=](onnx::NodeProto& n) {
                                              set_int(n, "transA", trans_a);
                                              set_int(n, "transB", trans_b);
                                              set_float(n, "alpha", alpha);
                                              set_float(n, "beta", beta);
                                            });
                      },
                      {a},
                      kSums});
  };
  gemm("Gemm [5,7]x[9,7]^T + C[9]", random_f32({5, 7}), random_f32({9, 7}), random_f32({9}), 0, 1,
       1.0f, 1.0f);
  gemm("Gemm [7,5]^T x [7,9] alpha beta C[5,1]", random_f32({7, 5}), random_f32({7, 9}),
       random_f32({5, 1}), 1, 0, 0.5f, 2.0f);
  gemm("Gemm [33,130]x[130,67]", random_f32({33, 130}), random_f32({130, 67}), random_f32({1}), 0,
       0, 1.0f, 0.0f);
  const auto matmul = [&](const Tensor& a, const Tensor& b, bool b_weight) {
    const std::string name = "MatMul " + a.shape.to_string() + " x " + b.shape.to_string() +
                             (b_weight ? " (weight)" : "");
    if (b_weight) {
      cases->push_back({"MatMul",
                        name,
                        [a, b] { return with_weights("MatMul", a, {b}, DType::kFloat32); },
                        {a},
                        kSums});
      return;
    }
    std::vector<Tensor> in = {a, b};
    cases->push_back(
        {"MatMul", name, [in] { return one_node("MatMul", in, DType::kFloat32); }, in, kSums});
  };
  matmul(random_f32({3, 4, 5}), random_f32({5, 6}), true);
  matmul(random_f32({2, 3, 4}), random_f32({2, 4, 5}), false);
  matmul(random_f32({2, 1, 4, 5}), random_f32({3, 5, 6}), false);  // irregular broadcast
  matmul(random_f32({7}), random_f32({7, 3}), false);
  matmul(random_f32({4, 7}), random_f32({7}), false);
}

// Patterns the fusion passes rewrite into coproc.Gelu, coproc.MatMulBias and coproc.Attention.
void add_fused(std::vector<Case>* cases) {
  cases->push_back({"coproc.Gelu",
                    "Erf GELU pattern [9,31]",
                    [] {
                      ModelBuilder b(kOpset);
                      b.input("x", DType::kFloat32, {-1, 31}).output("y", DType::kFloat32);
                      b.weight("rsqrt2", f32({}, {0.70710678f}));
                      b.weight("one", f32({}, {1.0f}));
                      b.weight("half", f32({}, {0.5f}));
                      b.node("Mul", {"x", "rsqrt2"}, {"s"});
                      b.node("Erf", {"s"}, {"e"});
                      b.node("Add", {"e", "one"}, {"p"});
                      b.node("Mul", {"x", "p"}, {"xp"});
                      b.node("Mul", {"xp", "half"}, {"y"});
                      return b;
                    },
                    {random_f32({9, 31}, -4, 4)},
                    kMath});
  cases->push_back({"coproc.MatMulBias",
                    "MatMul + bias + Relu [2,5,48]x[48,20]",
                    [] {
                      ModelBuilder b(kOpset);
                      b.input("x", DType::kFloat32, {-1, -1, 48}).output("y", DType::kFloat32);
                      b.weight("w", random_f32({48, 20}));
                      b.weight("bias", random_f32({20}));
                      b.node("MatMul", {"x", "w"}, {"m"});
                      b.node("Add", {"m", "bias"}, {"a"});
                      b.node("Relu", {"a"}, {"y"});
                      return b;
                    },
                    {random_f32({2, 5, 48})},
                    kSums});
  // Attention in the exporter's shape: heads split by Reshape + Transpose, scaled scores, a mask,
  // Softmax, then the heads merged back.
  cases->push_back(
      {"coproc.Attention",
       "attention [2,7,4 heads x 8] with a mask",
       [] {
         ModelBuilder b(kOpset);
         b.input("q", DType::kFloat32, {2, 7, 32}).input("k", DType::kFloat32, {2, 7, 32});
         b.input("v", DType::kFloat32, {2, 7, 32}).input("mask", DType::kFloat32, {2, 1, 1, 7});
         b.output("y", DType::kFloat32);
         b.weight("heads", i64({4}, {2, 7, 4, 8}));
         b.weight("merged", i64({3}, {2, 7, 32}));
         b.weight("scale", f32({}, {0.35355339f}));
         b.node("Reshape", {"q", "heads"}, {"q4"});
         b.node("Reshape", {"k", "heads"}, {"k4"});
         b.node("Reshape", {"v", "heads"}, {"v4"});
         set_ints(b.node("Transpose", {"q4"}, {"qh"}), "perm", {0, 2, 1, 3});
         set_ints(b.node("Transpose", {"k4"}, {"kt"}), "perm", {0, 2, 3, 1});
         set_ints(b.node("Transpose", {"v4"}, {"vh"}), "perm", {0, 2, 1, 3});
         b.node("MatMul", {"qh", "kt"}, {"s"});
         b.node("Mul", {"s", "scale"}, {"ss"});
         b.node("Add", {"ss", "mask"}, {"sm"});
         set_int(b.node("Softmax", {"sm"}, {"p"}), "axis", -1);
         b.node("MatMul", {"p", "vh"}, {"o"});
         set_ints(b.node("Transpose", {"o"}, {"ot"}), "perm", {0, 2, 1, 3});
         b.node("Reshape", {"ot", "merged"}, {"y"});
         return b;
       },
       {random_f32({2, 7, 32}), random_f32({2, 7, 32}), random_f32({2, 7, 32}),
        f32({2, 1, 1, 7}, {0, 0, 0, 0, 0, -1e4f, -1e4f, 0, 0, 0, 0, 0, 0, -1e4f})},
       kSums});
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  add_elementwise(&cases);
  add_casts(&cases);
  add_data_movement(&cases);
  add_reductions(&cases);
  add_products(&cases);
  add_fused(&cases);
  return cases;
}

const std::vector<Case>& cases() {
  static const std::vector<Case> c = all_cases();
  return c;
}

class CrossDevice : public ::testing::TestWithParam<std::size_t> {};

TEST_P(CrossDevice, shouldMatchTheCpuDevice) {
  const Case& c = cases()[GetParam()];
  auto model = load_for_both(c.build());
  ASSERT_NE(model, nullptr) << c.name;
  if (c.op.rfind("coproc.", 0) == 0) {
    ASSERT_GT(model->num_fused_nodes(), 0u) << c.name << ": the pattern did not fuse";
  }
  expect_same(model, c.inputs, c.tolerance, c.name);
}

INSTANTIATE_TEST_SUITE_P(Ops, CrossDevice, ::testing::Range<std::size_t>(0, cases().size()),
                         [](const auto& test) {
                           std::string name =
                               std::to_string(test.param) + "_" + cases()[test.param].name;
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

// Every operator the CPU device has is in the table above.
TEST(CrossDeviceCoverage, shouldCoverEveryOperatorOfTheCpuDevice) {
  std::set<std::string> covered;
  for (const Case& c : cases()) covered.insert(c.op);
  std::vector<std::string> missing;
  for (const auto table : {detail::elementwise_ops(), detail::linalg_ops(), detail::tensor_ops(),
                           detail::copy_ops(), detail::reduce_ops(), detail::fused_ops()}) {
    for (const detail::OpDef& op : table) {
      if (covered.count(std::string(op.name)) == 0) missing.emplace_back(op.name);
    }
  }
  EXPECT_THAT(missing, ::testing::IsEmpty());
}

TEST(CrossDeviceErrors, shouldRefuseAGatherIndexOutOfRangeNamingTheNodeAsTheCpuDoes) {
  auto model = load_for_both(
      one_node("Gather", {random_f32({10, 4}), i64({3}, {1, 10, 2})}, DType::kFloat32));
  ASSERT_NE(model, nullptr);
  auto dev = device();
  ASSERT_NE(dev, nullptr);
  auto uploaded = ClModel::upload(model, dev);
  ASSERT_TRUE(uploaded.ok()) << uploaded.error().message;
  ClSession gpu(uploaded.value());
  CpuSession cpu(model);
  const std::vector<Tensor> in = {random_f32({10, 4}), i64({3}, {1, 10, 2})};
  auto on_gpu = run(gpu, in);
  auto on_cpu = run(cpu, in);
  ASSERT_FALSE(on_gpu.ok());
  ASSERT_FALSE(on_cpu.ok());
  EXPECT_EQ(on_gpu.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(on_gpu.error().message, on_cpu.error().message);
  // The session still works after the refusal.
  auto fine = run(gpu, {random_f32({10, 4}), i64({3}, {1, 9, -10})});
  EXPECT_TRUE(fine.ok()) << fine.error().message;
}

// ---------------------------------------------------------------- whole models

std::string model_file(const std::string& name) {
  return std::string(COPROC_MODELS_DIR) + "/" + name;
}

std::shared_ptr<const Model> load_file(const std::string& name) {
  LoadOptions options;
  options.keep_unpacked = true;
  auto model = Model::load(model_file(name), options);
  EXPECT_TRUE(model.ok()) << model_file(name) << ": " << model.error().message;
  return model.ok() ? model.value() : nullptr;
}

TEST(CrossDeviceModels, shouldRunTheMlpAsTheCpuDoesAtSeveralBatchSizes) {
  auto model = load_file("mlp.onnx");
  for (const int64_t batch : {1, 7, 32}) {
    expect_same(model, {random_f32({batch, 256})}, kSums, "mlp batch " + std::to_string(batch));
  }
}

TEST(CrossDeviceModels, shouldGiveTheSameResultsWhenABatchRunsAsTwoOverlappedHalves) {
  auto mlp = load_file("mlp.onnx");
  for (const int64_t batch : {2, 7, 32}) {
    expect_same(mlp, {random_f32({batch, 256})}, kSums, "mlp halves " + std::to_string(batch),
                /*split=*/true);
  }
  // A model whose output is its input: the halves' output copies move row ranges.
  ModelBuilder identity(kOpset);
  identity.input("x", DType::kInt64, {-1, 3}).output("y", DType::kInt64);
  identity.node("Identity", {"x"}, {"y"});
  expect_same(load_for_both(identity), {random_i64({5, 3}, -9, 9)}, kExact, "identity halves",
              /*split=*/true);
}

TEST(CrossDeviceModels, shouldRunMiniLmAsTheCpuDoesWithPaddingInTheMask) {
  auto model = load_file("all-MiniLM-L6-v2.onnx");
  ASSERT_NE(model, nullptr);
  ASSERT_GT(model->num_fused_nodes(), 0u);
  constexpr int64_t kBatch = 2, kSeq = 17;
  Tensor ids = random_i64({kBatch, kSeq}, 1000, 20000);
  std::vector<int64_t> mask(kBatch * kSeq, 1);
  for (int64_t t = 11; t < kSeq; ++t) mask[kSeq + t] = 0;  // the second sentence is shorter
  std::vector<Tensor> inputs;
  for (const TensorSpec& spec : model->inputs()) {
    if (spec.name == "input_ids") {
      inputs.push_back(ids);
    } else if (spec.name == "attention_mask") {
      inputs.push_back(i64({kBatch, kSeq}, mask));
    } else {
      inputs.push_back(i64({kBatch, kSeq}, std::vector<int64_t>(kBatch * kSeq, 0)));
    }
  }
  expect_same(model, inputs, kSums, "all-MiniLM-L6-v2 [2, 17]");
  expect_same(model, inputs, kSums, "all-MiniLM-L6-v2 [2, 17] in halves", /*split=*/true);
}

}  // namespace
}  // namespace coproc::runtime::testing
