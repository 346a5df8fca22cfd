// Pattern fusion at load (LoadOptions::fuse, graph/fusion.cc) and the fused kernels (ops/fused.cc):
// each pattern on a model written here, loaded with fusion and without, must give the same
// outputs with fewer kernel calls; near misses (an intermediate that is also a graph output, a
// constant of the wrong shape or value) must be left alone. Then all-MiniLM-L6-v2 as exported
// (tools/export_minilm.py), when the build has made it: the same embeddings, fused or not, with
// every LayerNorm, GELU, attention and linear layer fused.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "coproc/kernels/cpu.h"
#include "coproc/kernels/parallel.h"
#include "coproc/runtime/model.h"
#include "device/cpu/cpu_session.h"
#include "onnx_test_model.h"
#include "reference_data.h"

namespace coproc::runtime {
namespace {

using testing::model_path;

// Fused kernels sum in other orders (and GELU's erf is an approximation within 4.2e-7).
constexpr float kMaxAbsDiff = 1e-5f;

std::vector<float> random_floats(std::size_t n, float lo, float hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

int64_t elements(const std::vector<int64_t>& dims) {
  return std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<>());
}

// A model of float32 inputs, outputs and weights, written with onnx_test_model.h's builder, that
// remembers its inputs' shapes for load_and_run() to feed.
class ModelWriter {
 public:
  explicit ModelWriter(int64_t opset = 17) : builder_(opset) {}

  void input(const std::string& name, const std::vector<int64_t>& dims) {
    builder_.input(name, DType::kFloat32, dims);
    inputs_.push_back(dims);
  }
  void output(const std::string& name, const std::vector<int64_t>& dims) {
    builder_.output(name, DType::kFloat32, dims);
  }
  void weight(const std::string& name, const std::vector<int64_t>& dims,
              const std::vector<float>& values) {
    builder_.weight(name, testing::f32(dims, values));
  }
  void random_weight(const std::string& name, const std::vector<int64_t>& dims) {
    weight(name, dims,
           random_floats(static_cast<std::size_t>(elements(dims)), -0.5f, 0.5f, seed_++));
  }
  void scalar(const std::string& name, float value) { weight(name, {}, {value}); }

  onnx::NodeProto* node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::string& output) {
    return &builder_.node(op, inputs, {output});
  }
  static void set_int(onnx::NodeProto* n, const std::string& name, int64_t value) {
    testing::set_int(*n, name, value);
  }
  static void set_ints(onnx::NodeProto* n, const std::string& name,
                       const std::vector<int64_t>& values) {
    testing::set_ints(*n, name, values);
  }

  const std::vector<std::vector<int64_t>>& inputs() const { return inputs_; }

  // Writes the model to a temporary file of its own, which the caller removes.
  std::string save(const std::string& stem) const {
    const std::string path =
        ::testing::TempDir() + "fusion_" + stem + "_" + std::to_string(::getpid()) + ".onnx";
    builder_.save(path);
    return path;
  }

 private:
  testing::ModelBuilder builder_;
  std::vector<std::vector<int64_t>> inputs_;
  unsigned seed_ = 100;
};

// What one load and run of a model gave.
struct Outcome {
  std::vector<std::vector<float>> outputs;
  std::size_t nodes = 0;
  std::size_t fused_nodes = 0;
  std::size_t kernel_calls = 0;
};

// Loads the model at path with `options` and runs it once on random inputs of the declared
// shapes (the same for every load).
std::optional<Outcome> load_and_run(const std::string& path, const LoadOptions& options,
                                    const std::vector<std::vector<int64_t>>& input_dims) {
  auto model = Model::load(path, options);
  if (!model.ok()) {
    ADD_FAILURE() << model.error().message;
    return std::nullopt;
  }
  Outcome o;
  o.nodes = (*model)->num_nodes();
  o.fused_nodes = (*model)->num_fused_nodes();
  CpuSession session(*model);
  std::vector<Shape> shapes;
  std::vector<std::vector<float>> data;
  std::vector<const void*> inputs;
  for (std::size_t i = 0; i < input_dims.size(); ++i) {
    shapes.push_back(Shape::of(input_dims[i]));
    data.push_back(random_floats(static_cast<std::size_t>(elements(input_dims[i])), -2.0f, 2.0f,
                                 static_cast<unsigned>(i + 1)));
  }
  for (const auto& d : data) inputs.push_back(d.data());
  auto plan = session.prepare(shapes, inputs);
  if (!plan.ok()) {
    ADD_FAILURE() << plan.error().message;
    return std::nullopt;
  }
  o.kernel_calls = (*plan)->num_kernel_calls();
  std::vector<void*> outputs;
  for (std::size_t j = 0; j < (*plan)->num_outputs(); ++j) {
    o.outputs.emplace_back((*plan)->output_bytes(j) / sizeof(float),
                           std::numeric_limits<float>::quiet_NaN());
  }
  for (auto& out : o.outputs) outputs.push_back(out.data());
  const Status ran = session.run(**plan, inputs, outputs);
  if (!ran.ok()) {
    ADD_FAILURE() << ran.error().message;
    return std::nullopt;
  }
  return o;
}

// One model loaded and run with fusion and without.
struct Comparison {
  Outcome fused;
  Outcome plain;
};

// Writes the model, then loads and runs it fused and not. nullopt when that failed (the failure
// is recorded).
std::optional<Comparison> compare(const ModelWriter& writer, const std::string& stem,
                                  bool pack_weights = true) {
  const std::string path = writer.save(stem);
  std::optional<Comparison> c;
  auto fused = load_and_run(path, {.pack_weights = pack_weights, .fuse = true}, writer.inputs());
  auto plain = load_and_run(path, {.pack_weights = pack_weights, .fuse = false}, writer.inputs());
  std::remove(path.c_str());
  if (fused && plain) c = Comparison{std::move(*fused), std::move(*plain)};
  return c;
}

#define COMPARE_OR_FAIL(var, ...)  \
  auto var = compare(__VA_ARGS__); \
  ASSERT_TRUE(var.has_value())

void expect_same_outputs(const Comparison& c) {
  ASSERT_EQ(c.fused.outputs.size(), c.plain.outputs.size());
  for (std::size_t j = 0; j < c.fused.outputs.size(); ++j) {
    const auto& a = c.fused.outputs[j];
    const auto& b = c.plain.outputs[j];
    ASSERT_EQ(a.size(), b.size()) << "output " << j;
    float worst = 0.0f;
    for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
    EXPECT_LE(worst, kMaxAbsDiff) << "output " << j;  // NaN fails too
  }
}

void expect_fused(const Comparison& c) {
  expect_same_outputs(c);
  EXPECT_LT(c.fused.nodes, c.plain.nodes);
  EXPECT_LT(c.fused.kernel_calls, c.plain.kernel_calls);
}

void expect_not_fused(const Comparison& c) {
  expect_same_outputs(c);
  EXPECT_EQ(c.fused.nodes, c.plain.nodes);
  EXPECT_EQ(c.fused.fused_nodes, 0u);
}

// ---------------------------------------------------------------- the GELU kernel

TEST(FusedKernelsTest, shouldComputeGeluWithinItsDocumentedErrorOfTheExactOne) {
  constexpr float kStep = 1.0f / 256;
  std::vector<float> x;
  for (float v = -12.0f; v <= 12.0f; v += kStep) x.push_back(v);
  std::vector<float> y(x.size());
  kernels::cpu::gelu(x.data(), y.data(), static_cast<int64_t>(x.size()));
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    const double exact = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    ASSERT_LE(std::fabs(y[i] - exact), 1.4e-6 * std::max(1.0, std::fabs(v))) << "x = " << v;
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  kernels::cpu::gelu(&nan, y.data(), 1);
  EXPECT_TRUE(std::isnan(y[0]));
}

// ---------------------------------------------------------------- LayerNorm

// torch's pre-opset-17 LayerNorm over x [2, 3, 8] -> y. `eps_dims` is the shape of the epsilon
// constant (a scalar in real exports); square_by_mul writes Pow(d, 2) as Mul(d, d) and swaps the
// operands of the affine Mul and Add.
ModelWriter decomposed_layer_norm(const std::vector<int64_t>& eps_dims, bool square_by_mul,
                                  bool mean_is_output) {
  ModelWriter w;
  w.input("x", {2, 3, 8});
  w.random_weight("gamma", {8});
  w.random_weight("beta", {8});
  w.scalar("two", 2.0f);
  w.weight("eps", eps_dims,
           std::vector<float>(static_cast<std::size_t>(elements(eps_dims)), 1e-5f));
  auto* mean = w.node("ReduceMean", {"x"}, "mean");
  ModelWriter::set_ints(mean, "axes", {-1});
  w.node("Sub", {"x", "mean"}, "d");
  if (square_by_mul) {
    w.node("Mul", {"d", "d"}, "sq");
  } else {
    w.node("Pow", {"d", "two"}, "sq");
  }
  ModelWriter::set_ints(w.node("ReduceMean", {"sq"}, "var"), "axes", {-1});
  w.node("Add", {"var", "eps"}, "var_eps");
  w.node("Sqrt", {"var_eps"}, "std");
  w.node("Div", {"d", "std"}, "normed");
  if (square_by_mul) {
    w.node("Mul", {"gamma", "normed"}, "scaled");
    w.node("Add", {"beta", "scaled"}, "y");
  } else {
    w.node("Mul", {"normed", "gamma"}, "scaled");
    w.node("Add", {"scaled", "beta"}, "y");
  }
  w.output("y", {2, 3, 8});
  if (mean_is_output) w.output("mean", {2, 3, 1});
  return w;
}

TEST(FusionTest, shouldFuseDecomposedLayerNormIntoOneNode) {
  COMPARE_OR_FAIL(c, decomposed_layer_norm({}, false, false), "layer_norm");
  expect_fused(*c);
  EXPECT_EQ(c->fused.nodes, 1u);  // LayerNormalization: an ONNX op, not a coproc. one
  EXPECT_EQ(c->fused.kernel_calls, 1u);
}

TEST(FusionTest, shouldFuseLayerNormSquaredByMulWithOperandsSwapped) {
  COMPARE_OR_FAIL(c, decomposed_layer_norm({1}, true, false), "layer_norm_mul");
  expect_fused(*c);
  EXPECT_EQ(c->fused.nodes, 1u);
}

TEST(FusionTest, shouldNotFuseLayerNormWhoseEpsilonIsNotAScalar) {
  COMPARE_OR_FAIL(c, decomposed_layer_norm({8}, false, false), "layer_norm_eps_vector");
  expect_not_fused(*c);
}

TEST(FusionTest, shouldNotFuseLayerNormWhoseMeanIsAlsoAGraphOutput) {
  COMPARE_OR_FAIL(c, decomposed_layer_norm({}, false, true), "layer_norm_mean_out");
  expect_not_fused(*c);
}

// ---------------------------------------------------------------- GELU

// Three GELUs of x [4, 33] in the orderings exporters use: torch's (x / sqrt 2 ... * x * 0.5),
// 0.5 first ((x * 0.5) * (1 + erf(x * 0.7071))), and 0.5 on the bracket (x * ((1 + erf) * 0.5)).
ModelWriter gelus(float sqrt2, bool erf_is_output) {
  ModelWriter w;
  w.input("x", {4, 33});
  w.scalar("sqrt2", sqrt2);
  w.scalar("inv_sqrt2", 0.70710678f);
  w.scalar("one", 1.0f);
  w.scalar("half", 0.5f);
  w.node("Div", {"x", "sqrt2"}, "t1");
  w.node("Erf", {"t1"}, "e1");
  w.node("Add", {"e1", "one"}, "a1");
  w.node("Mul", {"x", "a1"}, "m1");
  w.node("Mul", {"m1", "half"}, "y1");

  w.node("Mul", {"inv_sqrt2", "x"}, "t2");
  w.node("Erf", {"t2"}, "e2");
  w.node("Add", {"one", "e2"}, "a2");
  w.node("Mul", {"half", "x"}, "h2");
  w.node("Mul", {"a2", "h2"}, "y2");

  w.node("Mul", {"x", "inv_sqrt2"}, "t3");
  w.node("Erf", {"t3"}, "e3");
  w.node("Add", {"e3", "one"}, "a3");
  w.node("Mul", {"a3", "half"}, "m3");
  w.node("Mul", {"x", "m3"}, "y3");
  for (const char* y : {"y1", "y2", "y3"}) w.output(y, {4, 33});
  if (erf_is_output) w.output("e1", {4, 33});
  return w;
}

TEST(FusionTest, shouldFuseGeluInEveryOrderingIntoCoprocGelu) {
  COMPARE_OR_FAIL(c, gelus(1.4142135f, false), "gelu");
  expect_fused(*c);
  EXPECT_EQ(c->fused.fused_nodes, 3u);
  EXPECT_EQ(c->fused.nodes, 3u);
}

TEST(FusionTest, shouldNotFuseGeluWithAWrongConstant) {
  COMPARE_OR_FAIL(c, gelus(1.5f, false), "gelu_wrong_sqrt2");
  expect_same_outputs(*c);
  EXPECT_EQ(c->fused.fused_nodes, 2u);  // the other two still fuse
  EXPECT_EQ(c->fused.nodes, 2u + 5u);
}

TEST(FusionTest, shouldNotFuseGeluWhoseErfIsAlsoAGraphOutput) {
  COMPARE_OR_FAIL(c, gelus(1.4142135f, true), "gelu_erf_out");
  expect_same_outputs(*c);
  EXPECT_EQ(c->fused.fused_nodes, 2u);
}

// ---------------------------------------------------------------- MatMul + bias

// x [2, 5, 16] through three linear layers: + bias then Relu, bias first in the Add and no
// activation, and a torch GELU after; x1 [16] (a 1-D lhs) through a fourth, with Tanh.
ModelWriter linears(bool with_gelu, const std::vector<int64_t>& bias_dims, bool product_is_output) {
  ModelWriter w;
  w.input("x", {2, 5, 16});
  w.input("x1", {16});
  w.random_weight("w1", {16, 24});
  w.random_weight("b1", bias_dims);
  w.random_weight("w2", {24, 8});
  w.random_weight("b2", {8});
  w.random_weight("w4", {16, 3});
  w.random_weight("b4", {3});
  w.node("MatMul", {"x", "w1"}, "p1");
  w.node("Add", {"p1", "b1"}, "z1");
  w.node("Relu", {"z1"}, "h1");
  w.node("MatMul", {"h1", "w2"}, "p2");
  w.node("Add", {"b2", "p2"}, "y");
  w.node("MatMul", {"x1", "w4"}, "p4");
  w.node("Add", {"p4", "b4"}, "z4");
  w.node("Tanh", {"z4"}, "y4");
  w.output("y", {2, 5, 8});
  w.output("y4", {3});
  if (product_is_output) w.output("p1", {2, 5, 24});
  if (with_gelu) {
    w.random_weight("w3", {16, 40});
    w.random_weight("b3", {40});
    w.scalar("sqrt2", 1.4142135f);
    w.scalar("one", 1.0f);
    w.scalar("half", 0.5f);
    w.node("MatMul", {"x", "w3"}, "p3");
    w.node("Add", {"b3", "p3"}, "z3");
    w.node("Div", {"z3", "sqrt2"}, "t3");
    w.node("Erf", {"t3"}, "e3");
    w.node("Add", {"e3", "one"}, "a3");
    w.node("Mul", {"z3", "a3"}, "m3");
    w.node("Mul", {"m3", "half"}, "y3");
    w.output("y3", {2, 5, 40});
  }
  return w;
}

TEST(FusionTest, shouldFuseMatMulBiasAndActivationOnPackedWeights) {
  COMPARE_OR_FAIL(c, linears(false, {24}, false), "linear_packed");
  expect_fused(*c);
  EXPECT_EQ(c->fused.fused_nodes, 3u);
  EXPECT_EQ(c->fused.kernel_calls, 3u);
}

TEST(FusionTest, shouldFuseMatMulBiasAndActivationOnOpenBlas) {
  COMPARE_OR_FAIL(c, linears(false, {24}, false), "linear_blas", /*pack_weights=*/false);
  expect_fused(*c);
  EXPECT_EQ(c->fused.fused_nodes, 3u);
}

TEST(FusionTest, shouldFuseMatMulBiasWithAFusedGeluAsItsActivation) {
  COMPARE_OR_FAIL(c, linears(true, {24}, false), "linear_gelu");
  expect_fused(*c);
  EXPECT_EQ(c->fused.fused_nodes, 4u);  // the GELU went into its MatMulBias
  EXPECT_EQ(c->fused.kernel_calls, 4u);
}

TEST(FusionTest, shouldNotFuseMatMulWhoseBiasIsNotOneRow) {
  COMPARE_OR_FAIL(c, linears(false, {1, 24}, false), "linear_bias_2d");
  expect_same_outputs(*c);
  EXPECT_EQ(c->fused.fused_nodes, 2u);  // the other two still fuse
}

TEST(FusionTest, shouldNotFuseMatMulWhoseProductIsAlsoAGraphOutput) {
  COMPARE_OR_FAIL(c, linears(false, {24}, true), "linear_product_out");
  expect_same_outputs(*c);
  EXPECT_EQ(c->fused.fused_nodes, 2u);
}

// ---------------------------------------------------------------- attention

// MatMul(Q, K^T) -> Div(sqrt D) -> Add(mask) -> Softmax -> MatMul(V) on [B, H, S, D] = [2, 3, 5,
// 4] operands, the mask [2, 1, 1, 5]; or, with `broadcast`, K^T and V shared by the batch
// ([1, 3, 4, 5] and [3, 5, 6]), a mask [5], and the scale as a Mul by c first.
ModelWriter attention(bool broadcast, bool probs_are_output) {
  ModelWriter w;
  w.input("q", {2, 3, 5, 4});
  w.input("kt", broadcast ? std::vector<int64_t>{1, 3, 4, 5} : std::vector<int64_t>{2, 3, 4, 5});
  w.input("v", broadcast ? std::vector<int64_t>{3, 5, 6} : std::vector<int64_t>{2, 3, 5, 4});
  w.input("mask", broadcast ? std::vector<int64_t>{5} : std::vector<int64_t>{2, 1, 1, 5});
  w.scalar("c", broadcast ? 0.5f : 2.0f);
  w.node("MatMul", {"q", "kt"}, "s");
  if (broadcast) {
    w.node("Mul", {"c", "s"}, "scaled");
  } else {
    w.node("Div", {"s", "c"}, "scaled");
  }
  w.node("Add", {"scaled", "mask"}, "masked");
  ModelWriter::set_int(w.node("Softmax", {"masked"}, "p"), "axis", -1);
  w.node("MatMul", {"p", "v"}, "o");
  w.output("o", broadcast ? std::vector<int64_t>{2, 3, 5, 6} : std::vector<int64_t>{2, 3, 5, 4});
  if (probs_are_output) w.output("p", {2, 3, 5, 5});
  return w;
}

TEST(FusionTest, shouldFuseAttentionIntoOneKernelCall) {
  COMPARE_OR_FAIL(c, attention(false, false), "attention");
  expect_fused(*c);
  EXPECT_EQ(c->fused.fused_nodes, 1u);
  EXPECT_EQ(c->fused.kernel_calls, 1u);
}

TEST(FusionTest, shouldFuseAttentionWhoseOperandsBroadcastOverBatchAndHeads) {
  COMPARE_OR_FAIL(c, attention(true, false), "attention_broadcast");
  expect_fused(*c);
  EXPECT_EQ(c->fused.kernel_calls, 1u);
}

TEST(FusionTest, shouldNotFuseAttentionWhoseProbabilitiesAreAlsoAGraphOutput) {
  COMPARE_OR_FAIL(c, attention(false, true), "attention_probs_out");
  expect_not_fused(*c);
}

// The exporter's layout: Q, K, V as [B, S, H, D] = [2, 5, 3, 4], each transposed to heads (K
// straight to K^T), and the result transposed back: the four Transposes fuse too.
ModelWriter attention_with_head_transposes() {
  ModelWriter w;
  for (const char* name : {"q", "k", "v"}) w.input(name, {2, 5, 3, 4});
  w.input("mask", {2, 1, 1, 5});
  w.scalar("c", 2.0f);
  ModelWriter::set_ints(w.node("Transpose", {"q"}, "qh"), "perm", {0, 2, 1, 3});
  ModelWriter::set_ints(w.node("Transpose", {"k"}, "kt"), "perm", {0, 2, 3, 1});
  ModelWriter::set_ints(w.node("Transpose", {"v"}, "vh"), "perm", {0, 2, 1, 3});
  w.node("MatMul", {"qh", "kt"}, "s");
  w.node("Div", {"s", "c"}, "scaled");
  w.node("Add", {"scaled", "mask"}, "masked");
  ModelWriter::set_int(w.node("Softmax", {"masked"}, "p"), "axis", -1);
  w.node("MatMul", {"p", "vh"}, "oh");
  ModelWriter::set_ints(w.node("Transpose", {"oh"}, "o"), "perm", {0, 2, 1, 3});
  w.output("o", {2, 5, 3, 4});
  return w;
}

TEST(FusionTest, shouldFuseAttentionWithTheHeadTransposesAround) {
  COMPARE_OR_FAIL(c, attention_with_head_transposes(), "attention_bshd");
  expect_fused(*c);
  EXPECT_EQ(c->fused.nodes, 1u);
  EXPECT_EQ(c->fused.kernel_calls, 1u);
}

// ---------------------------------------------------------------- intra-op threads

// Big enough that the fused kernels split their work: 8 attention heads of [64, 32] (two shares)
// and a MatMulBias of 128 rows by [256, 512] (shares of 8 rows).
ModelWriter big_attention_and_linear() {
  ModelWriter w;
  w.input("q", {2, 4, 64, 32});
  w.input("kt", {2, 4, 32, 64});
  w.input("v", {2, 4, 64, 32});
  w.input("mask", {2, 1, 1, 64});
  w.input("x", {2, 64, 256});
  w.scalar("c", 5.656854f);
  w.random_weight("w", {256, 512});
  w.random_weight("b", {512});
  w.node("MatMul", {"q", "kt"}, "s");
  w.node("Div", {"s", "c"}, "scaled");
  w.node("Add", {"scaled", "mask"}, "masked");
  ModelWriter::set_int(w.node("Softmax", {"masked"}, "p"), "axis", -1);
  w.node("MatMul", {"p", "v"}, "o");
  w.node("MatMul", {"x", "w"}, "xw");
  w.node("Add", {"xw", "b"}, "z");
  w.node("Relu", {"z"}, "y");
  w.output("o", {2, 4, 64, 32});
  w.output("y", {2, 64, 512});
  return w;
}

class FusionThreadsTest : public ::testing::Test {
 protected:
  void SetUp() override { kernels::cpu::set_intra_op_threads(2); }
  void TearDown() override { kernels::cpu::set_intra_op_threads(1); }
};

TEST_F(FusionThreadsTest, shouldGiveTheSameOutputsWhenFusedKernelsSplitOverThreads) {
  COMPARE_OR_FAIL(c, big_attention_and_linear(), "threads");
  expect_fused(*c);
  EXPECT_EQ(c->fused.kernel_calls, 2u);
}

// ---------------------------------------------------------------- all-MiniLM-L6-v2

struct MiniLmRun {
  std::size_t nodes = 0;
  std::size_t fused_nodes = 0;
  std::size_t kernel_calls = 0;
  std::vector<float> embeddings;
  double median_ms = 0.0;
};

constexpr int64_t kBatch = 8;
constexpr int64_t kSeq = 128;
constexpr int64_t kHidden = 384;
constexpr int kTimedRuns = 5;

// The build exports both MiniLM variants (target coproc_minilm_models); a missing file or an
// operator the runtime lacks fails the test.
#define LOAD_MINILM_OR_FAIL(var, path, fused)                 \
  auto var = Model::load(path, LoadOptions{.fuse = (fused)}); \
  ASSERT_TRUE(var.ok()) << var.error().message

// One batch of 8 sequences of 128 tokens (random ids, the last rows padded), run kTimedRuns
// times after one warm-up run.
Result<MiniLmRun> run_minilm(const std::shared_ptr<const Model>& model) {
  MiniLmRun r;
  r.nodes = model->num_nodes();
  r.fused_nodes = model->num_fused_nodes();
  std::vector<int64_t> ids(kBatch * kSeq), mask(kBatch * kSeq, 1);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int64_t> token(1000, 29000);
  for (int64_t b = 0; b < kBatch; ++b) {
    const int64_t length = kSeq - b * 9;  // row b has b * 9 padding positions
    for (int64_t s = 0; s < kSeq; ++s) {
      const bool real = s < length;
      ids[static_cast<std::size_t>(b * kSeq + s)] = real ? token(rng) : 0;
      mask[static_cast<std::size_t>(b * kSeq + s)] = real ? 1 : 0;
    }
  }
  CpuSession session(model);
  const Shape shape = Shape::of(std::vector<int64_t>{kBatch, kSeq});
  const Shape shapes[] = {shape, shape};
  const void* inputs[] = {ids.data(), mask.data()};
  auto plan = session.prepare(shapes, inputs);
  if (!plan.ok()) return plan.error();
  r.kernel_calls = (*plan)->num_kernel_calls();
  r.embeddings.assign(static_cast<std::size_t>(kBatch * kHidden), 0.0f);
  void* outputs[] = {r.embeddings.data()};
  std::vector<double> ms;
  for (int i = 0; i <= kTimedRuns; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const Status ran = session.run(**plan, inputs, outputs);
    const auto stop = std::chrono::steady_clock::now();
    if (!ran.ok()) return ran.error();
    if (i > 0) ms.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  std::sort(ms.begin(), ms.end());
  r.median_ms = ms[ms.size() / 2];
  return r;
}

double cosine(const float* a, const float* b, int64_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < n; ++i) {
    ab += double{a[i]} * b[i];
    aa += double{a[i]} * a[i];
    bb += double{b[i]} * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

class MiniLmFusionTest : public ::testing::TestWithParam<const char*> {};

TEST_P(MiniLmFusionTest, shouldGiveTheSameEmbeddingsWithEveryBlockFused) {
  const std::string path = model_path(GetParam());
  LOAD_MINILM_OR_FAIL(fused_model, path, true);
  LOAD_MINILM_OR_FAIL(plain_model, path, false);
  const auto plain = run_minilm(*plain_model);
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  const auto fused = run_minilm(*fused_model);
  ASSERT_TRUE(fused.ok()) << fused.error().message;
  for (int64_t b = 0; b < kBatch; ++b) {
    EXPECT_GE(cosine(fused->embeddings.data() + b * kHidden, plain->embeddings.data() + b * kHidden,
                     kHidden),
              0.99999)
        << "row " << b;
  }
  std::printf(
      "%s, batch %ld x seq %ld: %zu nodes, %zu kernel calls, %.1f ms unfused; "
      "%zu nodes (%zu coproc.*), %zu kernel calls, %.1f ms fused\n",
      GetParam(), static_cast<long>(kBatch), static_cast<long>(kSeq), plain->nodes,
      plain->kernel_calls, plain->median_ms, fused->nodes, fused->fused_nodes, fused->kernel_calls,
      fused->median_ms);
  // 6 layers: 6 attentions and 6 x 6 linear layers (Q, K, V, attention output, intermediate with
  // its GELU, output) are coproc.* nodes; the 13 LayerNorms are LayerNormalization either way, and
  // count as fused where fusion rebuilt them from the decomposed export.
  const bool decomposed = std::string(GetParam()).find("decomposed") != std::string::npos;
  EXPECT_EQ(fused->fused_nodes, 6u + 36u + (decomposed ? 13u : 0u));
  EXPECT_LT(fused->kernel_calls, plain->kernel_calls);
}

// Both exports fuse to the same graph: every decomposed LayerNorm became a LayerNormalization.
TEST(MiniLmExportsFusionTest, shouldFuseEveryDecomposedLayerNorm) {
  LOAD_MINILM_OR_FAIL(fused, model_path("all-MiniLM-L6-v2.onnx"), true);
  LOAD_MINILM_OR_FAIL(decomposed, model_path("all-MiniLM-L6-v2-decomposed.onnx"), true);
  EXPECT_EQ((*decomposed)->num_nodes(), (*fused)->num_nodes());
  EXPECT_EQ((*decomposed)->num_fused_nodes(), (*fused)->num_fused_nodes() + 13u);
}

INSTANTIATE_TEST_SUITE_P(Exports, MiniLmFusionTest,
                         ::testing::Values("all-MiniLM-L6-v2.onnx",
                                           "all-MiniLM-L6-v2-decomposed.onnx"));

}  // namespace
}  // namespace coproc::runtime
