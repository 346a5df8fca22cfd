// Pattern fusion (passes.h: fuse_patterns): the subgraphs that BERT-style exports (torch.onnx,
// opset 17) spell out op by op, rewritten into one node each.
//
//  1. ReduceMean(x, [-1]) -> Sub(x, .) -> Pow(., 2) | Mul(d, d) -> ReduceMean(., [-1]) ->
//     Add(eps) -> Sqrt -> Div(d, .) -> Mul(gamma) -> Add(beta)
//       ==> LayerNormalization(x, gamma, beta; axis -1, epsilon eps)
//  2. x -> Div(sqrt 2) | Mul(1 / sqrt 2) -> Erf -> Add(1), times x and 0.5 in any order
//     (x * a * 0.5, 0.5 * a * x, (x * 0.5) * a, x * (a * 0.5), ...)
//       ==> coproc.Gelu(x)
//  3. Attention: MatMul(Q, K^T) [-> Div(c) | Mul(c)] [-> Add(mask)] -> Softmax(-1) -> MatMul(., V)
//       ==> coproc.Attention(Q, K^T, V, mask; scale 1/c | c, layout "bhsd"); and when Q, K^T and
//       V come from the exporter's head transposes and the result goes through its merging one
//       (see ops/fused.cc), those four Transposes go too: coproc.Attention(..., layout "bshd").
//  4. MatMul(x, W) -> Add(bias) [-> Relu | coproc.Gelu | Tanh | Sigmoid], W a 2-D weight and
//     bias a weight [N]
//       ==> coproc.MatMulBias(x, W, bias; activation)
// In that order: GELU before MatMulBias, so that the activation a MatMulBias absorbs can be a
// fused GELU.
//
// What a match requires, beyond the operators and their wiring:
//  - every value inside the pattern (neither its inputs nor its output) is computed, is not a
//    graph output, and is read by the pattern's nodes only; the shared values it reads (x in
//    LayerNorm and GELU) are its inputs;
//  - constants (eps, 2, sqrt 2, 1, 0.5, the attention scale) are float32 weights of one element
//    within kConstantTolerance of the expected value, of rank 0, or of rank <= 1 where a [1]
//    cannot change the output's shape (the LayerNorm epsilon, the Pow exponent, the attention
//    scale); gamma, beta and the bias are rank-1 float32 weights;
//  - axes that cannot be checked against a rank at load (LayerNorm's ReduceMean, Softmax) must be
//    the last axis spelled -1.
// The fused node replaces the pattern's last node: every input of the pattern is read by one of
// its nodes, so it is computed before the last one, and every reader of the pattern's output
// comes after the last one, so the order stays topological. It is named after the pattern's first
// node, plus "/" and the fused op.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "graph/passes.h"
#include "ops/ops.h"

namespace coproc::runtime::detail {
namespace {

// How far a constant may be from the value a pattern needs, relative to that value: float32
// spellings of sqrt 2 (1.4142135, 1.41421356) and of 1 / sqrt 2 are within 1e-7.
constexpr double kConstantTolerance = 1e-6;
constexpr double kSqrt2 = 1.41421356237309505;

// The ops whose output a MatMulBias may apply in its epilogue, as its `activation` attribute
// names them (ops/fused.cc).
struct ActivationOp {
  std::string_view op;
  std::string_view activation;
};
constexpr ActivationOp kActivations[] = {
    {"Relu", "Relu"}, {"coproc.Gelu", "Gelu"}, {"Tanh", "Tanh"}, {"Sigmoid", "Sigmoid"}};

constexpr int64_t kHeadsPerm[] = {0, 2, 1, 3};  // [B, S, H, D] <-> [B, H, S, D]
constexpr int64_t kKeysTPerm[] = {0, 2, 3, 1};  // [B, S, H, D] -> K^T [B, H, D, S]

// A match: the nodes to remove (by index) and the node that replaces the last of them.
struct Rewrite {
  std::vector<int32_t> nodes;
  Node fused;
};

Attribute int_attribute(std::string name, int64_t value) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Attribute::Kind::kInt;
  a.i = value;
  return a;
}

Attribute float_attribute(std::string name, float value) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Attribute::Kind::kFloat;
  a.f = value;
  return a;
}

Attribute string_attribute(std::string name, std::string_view value) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Attribute::Kind::kString;
  a.s = value;
  return a;
}

bool near(float got, double want) {
  return std::isfinite(got) &&
         std::fabs(static_cast<double>(got) - want) <= kConstantTolerance * std::fabs(want);
}

class Fuser {
 public:
  explicit Fuser(Graph* graph) : graph_(*graph) {}

  // Runs `match` (int32_t node index -> std::optional<Rewrite>) from every node, applies the
  // rewrites found, then compacts the graph.
  template <class Match>
  void sweep(Match match) {
    index();
    std::vector<std::pair<int32_t, Node>> replacements;
    for (std::size_t n = 0; n < graph_.nodes.size(); ++n) {
      if (used_[n]) continue;
      std::optional<Rewrite> rewrite = match(static_cast<int32_t>(n));
      if (!rewrite) continue;
      std::vector<int32_t>& nodes = rewrite->nodes;
      const bool overlaps = std::any_of(nodes.begin(), nodes.end(), [&](int32_t i) {
        return used_[static_cast<std::size_t>(i)];
      });
      if (overlaps) continue;
      std::sort(nodes.begin(), nodes.end());
      for (const int32_t i : nodes) used_[static_cast<std::size_t>(i)] = true;
      rewrite->fused.name = fmt::format("{}/{}", node(nodes.front()).name, rewrite->fused.op);
      replacements.emplace_back(nodes.back(), std::move(rewrite->fused));
    }
    if (replacements.empty()) return;
    std::vector<Node> kept;
    std::sort(replacements.begin(), replacements.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    auto next = replacements.begin();
    for (std::size_t n = 0; n < graph_.nodes.size(); ++n) {
      if (next != replacements.end() && static_cast<std::size_t>(next->first) == n) {
        kept.push_back(std::move(next->second));
        ++next;
      } else if (!used_[n]) {
        kept.push_back(std::move(graph_.nodes[n]));
        continue;
      }
      // The pattern's values lose their producer; its output gets the fused node back below.
      for (const int32_t v : graph_.nodes[n].outputs) {
        if (v >= 0) graph_.values[static_cast<std::size_t>(v)].index = -1;
      }
    }
    graph_.nodes = std::move(kept);
    for (std::size_t n = 0; n < graph_.nodes.size(); ++n) {
      for (const int32_t v : graph_.nodes[n].outputs) {
        if (v >= 0) graph_.values[static_cast<std::size_t>(v)].index = static_cast<int32_t>(n);
      }
    }
  }

  const Node& node(int32_t i) const { return graph_.nodes[static_cast<std::size_t>(i)]; }
  const Value& value(int32_t v) const { return graph_.values[static_cast<std::size_t>(v)]; }
  bool is_float32(int32_t v) const { return v >= 0 && value(v).dtype == DType::kFloat32; }

  // n is `op` with exactly `inputs` inputs, all present, and one output.
  bool is(const Node& n, std::string_view op, std::size_t inputs) const {
    return n.op == op && n.inputs.size() == inputs && n.outputs.size() == 1 && n.outputs[0] >= 0 &&
           std::all_of(n.inputs.begin(), n.inputs.end(), [](int32_t v) { return v >= 0; });
  }
  static int32_t out(const Node& n) { return n.outputs.size() == 1 ? n.outputs[0] : -1; }

  // v is computed, not a graph output, and read by no node outside `readers`.
  bool private_to(int32_t v, std::initializer_list<int32_t> readers) const {
    if (v < 0 || value(v).kind != Value::Kind::kComputed ||
        is_output_[static_cast<std::size_t>(v)]) {
      return false;
    }
    const std::vector<int32_t>& r = readers_[static_cast<std::size_t>(v)];
    return !r.empty() && std::all_of(r.begin(), r.end(), [&](int32_t n) {
      return std::find(readers.begin(), readers.end(), n) != readers.end();
    });
  }
  // The one node reading the computed value v when v is not a graph output; -1 otherwise.
  int32_t sole_reader(int32_t v) const {
    if (v < 0 || readers_[static_cast<std::size_t>(v)].empty()) return -1;
    const int32_t n = readers_[static_cast<std::size_t>(v)].front();
    return private_to(v, {n}) ? n : -1;
  }
  // The nodes reading v, once per input slot.
  std::span<const int32_t> readers(int32_t v) const {
    return readers_[static_cast<std::size_t>(v)];
  }
  // The index of the node producing v, or -1 when v is not computed.
  int32_t producer(int32_t v) const {
    return v >= 0 && value(v).kind == Value::Kind::kComputed ? value(v).index : -1;
  }

  const HostTensor* weight(int32_t v) const {
    if (v < 0 || value(v).kind != Value::Kind::kWeight) return nullptr;
    return &graph_.weights[static_cast<std::size_t>(value(v).index)];
  }
  // The value of a one-element float32 weight of rank <= max_rank.
  std::optional<float> scalar(int32_t v, int32_t max_rank) const {
    const HostTensor* w = weight(v);
    if (w == nullptr || w->dtype != DType::kFloat32 || w->shape.rank > max_rank ||
        w->elements() != 1 || w->bytes.size() != sizeof(float)) {
      return std::nullopt;
    }
    return *w->as<float>();
  }
  bool scalar_near(int32_t v, int32_t max_rank, double want) const {
    const std::optional<float> c = scalar(v, max_rank);
    return c && near(*c, want);
  }
  // A rank-1 float32 weight with its data.
  const HostTensor* vector_weight(int32_t v) const {
    const HostTensor* w = weight(v);
    const bool ok = w != nullptr && w->dtype == DType::kFloat32 && w->shape.rank == 1 &&
                    w->bytes.size() == static_cast<std::size_t>(w->elements()) * sizeof(float);
    return ok ? w : nullptr;
  }

 private:
  void index() {
    readers_.assign(graph_.values.size(), {});
    is_output_.assign(graph_.values.size(), false);
    used_.assign(graph_.nodes.size(), false);
    for (std::size_t n = 0; n < graph_.nodes.size(); ++n) {
      for (const int32_t v : graph_.nodes[n].inputs) {
        if (v >= 0) readers_[static_cast<std::size_t>(v)].push_back(static_cast<int32_t>(n));
      }
    }
    for (const int32_t v : graph_.outputs) is_output_[static_cast<std::size_t>(v)] = true;
  }

  Graph& graph_;
  std::vector<std::vector<int32_t>> readers_;  // per value: its readers, once per input slot
  std::vector<bool> is_output_;                // per value
  std::vector<bool> used_;                     // per node: in a rewrite of this sweep
};

// For a binary node reading v: its other operand (v itself for Op(v, v)); -1 when it does not
// read v.
int32_t other_input(const Node& n, int32_t v) {
  if (n.inputs[0] == v) return n.inputs[1];
  if (n.inputs[1] == v) return n.inputs[0];
  return -1;
}

// ---------------------------------------------------------------- LayerNorm

// ReduceMean over the last axis, spelled -1, keeping it: axes as the attribute (opset < 18) or
// as a constant input (opset 18).
bool is_mean_over_last_axis(const Fuser& f, const Node& n) {
  if (n.op != "ReduceMean" || n.inputs.empty() || n.inputs[0] < 0 || Fuser::out(n) < 0) {
    return false;
  }
  if (n.int_attr("keepdims", 1) != 1) return false;
  if (const Attribute* axes = n.attribute("axes"); axes != nullptr) {
    return axes->ints == std::vector<int64_t>{-1} && !n.has_input(1);
  }
  const HostTensor* w = n.has_input(1) ? f.weight(n.inputs[1]) : nullptr;
  return w != nullptr && !w->bytes.empty() && w->to_ints() == std::vector<int64_t>{-1};
}

std::optional<Rewrite> match_layer_norm(const Fuser& f, int32_t mean_i) {
  static const OpDef* const layer_norm = find_op("LayerNormalization");
  const Node& mean = f.node(mean_i);
  if (layer_norm == nullptr || !is_mean_over_last_axis(f, mean)) return std::nullopt;
  const int32_t x = mean.inputs[0];
  if (!f.is_float32(x)) return std::nullopt;

  const int32_t sub_i = f.sole_reader(Fuser::out(mean));
  if (sub_i < 0) return std::nullopt;
  const Node& sub = f.node(sub_i);
  if (!f.is(sub, "Sub", 2) || sub.inputs[0] != x || sub.inputs[1] != Fuser::out(mean)) {
    return std::nullopt;
  }
  // The centred x is read twice: squared, and divided by the deviation.
  const int32_t centred = Fuser::out(sub);
  int32_t square_i = -1, div_i = -1;
  for (const int32_t r : f.readers(centred)) {
    (f.node(r).op == "Div" ? div_i : square_i) = r;
  }
  if (square_i < 0 || div_i < 0 || !f.private_to(centred, {square_i, div_i})) return std::nullopt;
  const Node& square = f.node(square_i);
  const bool is_square =
      (f.is(square, "Pow", 2) && square.inputs[0] == centred &&
       f.scalar_near(square.inputs[1], 1, 2.0)) ||
      (f.is(square, "Mul", 2) && square.inputs[0] == centred && square.inputs[1] == centred);
  if (!is_square) return std::nullopt;

  const int32_t var_i = f.sole_reader(Fuser::out(square));
  if (var_i < 0 || !is_mean_over_last_axis(f, f.node(var_i)) ||
      f.node(var_i).inputs[0] != Fuser::out(square)) {
    return std::nullopt;
  }
  const int32_t var = Fuser::out(f.node(var_i));
  const int32_t add_eps_i = f.sole_reader(var);
  if (add_eps_i < 0 || !f.is(f.node(add_eps_i), "Add", 2)) return std::nullopt;
  const std::optional<float> eps = f.scalar(other_input(f.node(add_eps_i), var), 1);
  if (!eps || !std::isfinite(*eps)) return std::nullopt;
  const int32_t sqrt_i = f.sole_reader(Fuser::out(f.node(add_eps_i)));
  if (sqrt_i < 0 || !f.is(f.node(sqrt_i), "Sqrt", 1)) return std::nullopt;
  const Node& div = f.node(div_i);
  if (f.sole_reader(Fuser::out(f.node(sqrt_i))) != div_i || !f.is(div, "Div", 2) ||
      div.inputs[0] != centred || div.inputs[1] != Fuser::out(f.node(sqrt_i))) {
    return std::nullopt;
  }

  const int32_t mul_i = f.sole_reader(Fuser::out(div));
  if (mul_i < 0 || !f.is(f.node(mul_i), "Mul", 2)) return std::nullopt;
  const int32_t gamma = other_input(f.node(mul_i), Fuser::out(div));
  const int32_t add_i = f.sole_reader(Fuser::out(f.node(mul_i)));
  if (add_i < 0 || !f.is(f.node(add_i), "Add", 2)) return std::nullopt;
  const int32_t beta = other_input(f.node(add_i), Fuser::out(f.node(mul_i)));
  const HostTensor* gamma_w = f.vector_weight(gamma);
  const HostTensor* beta_w = f.vector_weight(beta);
  if (gamma_w == nullptr || beta_w == nullptr || !(gamma_w->shape == beta_w->shape)) {
    return std::nullopt;
  }

  Node fused;
  fused.def = layer_norm;
  fused.op = "LayerNormalization";
  fused.fused = true;
  fused.inputs = {x, gamma, beta};
  fused.outputs = {Fuser::out(f.node(add_i))};
  fused.attributes = {int_attribute("axis", -1), float_attribute("epsilon", *eps)};
  fused.opset = mean.opset;
  return Rewrite{{mean_i, sub_i, square_i, var_i, add_eps_i, sqrt_i, div_i, mul_i, add_i},
                 std::move(fused)};
}

// ---------------------------------------------------------------- GELU

// n is Mul(v, c) or Mul(c, v) with c a rank-0 constant near `want`.
bool is_mul_by(const Fuser& f, const Node& n, int32_t v, double want) {
  return f.is(n, "Mul", 2) && f.scalar_near(other_input(n, v), 0, want);
}

std::optional<Rewrite> match_gelu(const Fuser& f, int32_t erf_i) {
  static const OpDef* const gelu = find_op("coproc.Gelu");
  const Node& erf = f.node(erf_i);
  if (!f.is(erf, "Erf", 1)) return std::nullopt;
  // x / sqrt 2, or x * (1 / sqrt 2).
  const int32_t scaled = erf.inputs[0];
  const int32_t scale_i = f.producer(scaled);
  if (scale_i < 0 || f.sole_reader(scaled) != erf_i) return std::nullopt;
  const Node& scale = f.node(scale_i);
  int32_t x = -1;
  if (f.is(scale, "Div", 2) && f.scalar_near(scale.inputs[1], 0, kSqrt2)) {
    x = scale.inputs[0];
  } else if (f.is(scale, "Mul", 2)) {
    for (const std::size_t k : {0u, 1u}) {
      if (f.scalar_near(scale.inputs[k], 0, 1.0 / kSqrt2)) x = scale.inputs[1 - k];
    }
  }
  if (!f.is_float32(x)) return std::nullopt;

  // a = 1 + erf(.)
  const int32_t add_i = f.sole_reader(Fuser::out(erf));
  if (add_i < 0 || !f.is(f.node(add_i), "Add", 2) ||
      !f.scalar_near(other_input(f.node(add_i), Fuser::out(erf)), 0, 1.0)) {
    return std::nullopt;
  }
  const int32_t a = Fuser::out(f.node(add_i));
  // Then x * a * 0.5 in one of three groupings.
  const int32_t mul_i = f.sole_reader(a);
  if (mul_i < 0 || !f.is(f.node(mul_i), "Mul", 2)) return std::nullopt;
  const int32_t other = other_input(f.node(mul_i), a);
  std::vector<int32_t> nodes = {scale_i, erf_i, add_i, mul_i};
  int32_t last_i = mul_i;
  if (other == x || f.scalar_near(other, 0, 0.5)) {
    // (x * a) * 0.5, or (a * 0.5) * x.
    last_i = f.sole_reader(Fuser::out(f.node(mul_i)));
    if (last_i < 0) return std::nullopt;
    const bool closes = other == x
                            ? is_mul_by(f, f.node(last_i), Fuser::out(f.node(mul_i)), 0.5)
                            : f.is(f.node(last_i), "Mul", 2) &&
                                  other_input(f.node(last_i), Fuser::out(f.node(mul_i))) == x;
    if (!closes) return std::nullopt;
    nodes.push_back(last_i);
  } else {
    // (x * 0.5) * a.
    const int32_t half_i = f.producer(other);
    if (half_i < 0 || f.sole_reader(other) != mul_i || !is_mul_by(f, f.node(half_i), x, 0.5)) {
      return std::nullopt;
    }
    nodes.push_back(half_i);
  }

  Node fused;
  fused.def = gelu;
  fused.op = "coproc.Gelu";
  fused.inputs = {x};
  fused.outputs = {Fuser::out(f.node(last_i))};
  fused.opset = erf.opset;
  return Rewrite{std::move(nodes), std::move(fused)};
}

// ---------------------------------------------------------------- attention

bool is_transpose(const Fuser& f, const Node& n, std::span<const int64_t> perm) {
  const Attribute* p = f.is(n, "Transpose", 1) ? n.attribute("perm") : nullptr;
  return p != nullptr && std::equal(p->ints.begin(), p->ints.end(), perm.begin(), perm.end());
}

// The index of the Transpose by `perm` producing v when v is read only by node `reader`; -1
// otherwise.
int32_t transpose_into(const Fuser& f, int32_t v, std::span<const int64_t> perm, int32_t reader) {
  const int32_t t = f.producer(v);
  return t >= 0 && f.sole_reader(v) == reader && is_transpose(f, f.node(t), perm) ? t : -1;
}

std::optional<Rewrite> match_attention(const Fuser& f, int32_t qk_i) {
  static const OpDef* const attention = find_op("coproc.Attention");
  const Node& qk = f.node(qk_i);
  if (!f.is(qk, "MatMul", 2)) return std::nullopt;
  int32_t q = qk.inputs[0], k = qk.inputs[1];
  if (!f.is_float32(q) || !f.is_float32(k)) return std::nullopt;
  std::vector<int32_t> nodes = {qk_i};
  int32_t scores = Fuser::out(qk);
  int32_t next_i = f.sole_reader(scores);
  if (next_i < 0) return std::nullopt;

  // Optional scale: Div(scores, c) or Mul by c.
  float scale = 1.0f;
  if (const Node& n = f.node(next_i); f.is(n, "Div", 2) || f.is(n, "Mul", 2)) {
    const bool divides = n.op == "Div";
    if (divides && n.inputs[0] != scores) return std::nullopt;
    const std::optional<float> c = f.scalar(other_input(n, scores), 1);
    if (!c || !std::isfinite(*c) || (divides && *c == 0.0f)) return std::nullopt;
    scale = divides ? 1.0f / *c : *c;
    nodes.push_back(next_i);
    scores = Fuser::out(n);
    next_i = f.sole_reader(scores);
    if (next_i < 0) return std::nullopt;
  }
  // Optional additive mask.
  int32_t mask = -1;
  if (const Node& n = f.node(next_i); f.is(n, "Add", 2)) {
    mask = other_input(n, scores);
    if (mask == scores || !f.is_float32(mask)) return std::nullopt;
    nodes.push_back(next_i);
    scores = Fuser::out(n);
    next_i = f.sole_reader(scores);
    if (next_i < 0) return std::nullopt;
  }
  // Softmax along the last axis: -1, or the default from opset 13 on (before, the default
  // flattened from axis 1).
  const Node& softmax = f.node(next_i);
  const Attribute* axis = softmax.attribute("axis");
  const bool last_axis = axis != nullptr ? axis->i == -1 : softmax.opset >= 13;
  if (!f.is(softmax, "Softmax", 1) || !last_axis) return std::nullopt;
  nodes.push_back(next_i);
  const int32_t probs = Fuser::out(softmax);
  const int32_t pv_i = f.sole_reader(probs);
  if (pv_i < 0) return std::nullopt;
  const Node& pv = f.node(pv_i);
  if (!f.is(pv, "MatMul", 2) || pv.inputs[0] != probs || pv.inputs[1] == probs ||
      !f.is_float32(pv.inputs[1])) {
    return std::nullopt;
  }
  nodes.push_back(pv_i);
  int32_t v = pv.inputs[1];
  int32_t result = Fuser::out(pv);

  // The exporter's head transposes, when all four are there and read by nothing else.
  std::string_view layout = "bhsd";
  const int32_t tq = transpose_into(f, q, kHeadsPerm, qk_i);
  const int32_t tk = transpose_into(f, k, kKeysTPerm, qk_i);
  const int32_t tv = transpose_into(f, v, kHeadsPerm, pv_i);
  const int32_t to = f.sole_reader(result);
  if (tq >= 0 && tk >= 0 && tv >= 0 && to >= 0 && is_transpose(f, f.node(to), kHeadsPerm)) {
    layout = "bshd";
    q = f.node(tq).inputs[0];
    k = f.node(tk).inputs[0];
    v = f.node(tv).inputs[0];
    result = Fuser::out(f.node(to));
    nodes.insert(nodes.end(), {tq, tk, tv, to});
  }

  Node fused;
  fused.def = attention;
  fused.op = "coproc.Attention";
  fused.inputs = {q, k, v, mask};
  fused.outputs = {result};
  fused.attributes = {float_attribute("scale", scale), string_attribute("layout", layout)};
  fused.opset = qk.opset;
  return Rewrite{std::move(nodes), std::move(fused)};
}

// ---------------------------------------------------------------- MatMul + bias

std::optional<Rewrite> match_matmul_bias(const Fuser& f, int32_t matmul_i) {
  static const OpDef* const matmul_bias = find_op("coproc.MatMulBias");
  const Node& matmul = f.node(matmul_i);
  if (!f.is(matmul, "MatMul", 2) || !f.is_float32(matmul.inputs[0])) return std::nullopt;
  const HostTensor* w = f.weight(matmul.inputs[1]);
  if (w == nullptr || w->dtype != DType::kFloat32 || w->shape.rank != 2) return std::nullopt;
  const int32_t product = Fuser::out(matmul);
  const int32_t add_i = f.sole_reader(product);
  if (add_i < 0 || !f.is(f.node(add_i), "Add", 2)) return std::nullopt;
  const int32_t bias = other_input(f.node(add_i), product);
  const HostTensor* b = f.vector_weight(bias);
  if (b == nullptr || b->shape.dims[0] != w->shape.dims[1]) return std::nullopt;

  std::vector<int32_t> nodes = {matmul_i, add_i};
  int32_t result = Fuser::out(f.node(add_i));
  std::string_view activation;
  if (const int32_t act_i = f.sole_reader(result); act_i >= 0) {
    for (const ActivationOp& a : kActivations) {
      if (f.is(f.node(act_i), a.op, 1)) {
        activation = a.activation;
        nodes.push_back(act_i);
        result = Fuser::out(f.node(act_i));
        break;
      }
    }
  }

  Node fused;
  fused.def = matmul_bias;
  fused.op = "coproc.MatMulBias";
  fused.inputs = {matmul.inputs[0], matmul.inputs[1], bias};
  fused.outputs = {result};
  fused.attributes = {string_attribute("activation", activation)};
  fused.opset = matmul.opset;
  return Rewrite{std::move(nodes), std::move(fused)};
}
}  // namespace

void fuse_patterns(Graph* graph) {
  Fuser fuser(graph);
  fuser.sweep([&](int32_t n) { return match_layer_norm(fuser, n); });
  fuser.sweep([&](int32_t n) { return match_gelu(fuser, n); });
  fuser.sweep([&](int32_t n) { return match_attention(fuser, n); });
  fuser.sweep([&](int32_t n) { return match_matmul_bias(fuser, n); });
}

}  // namespace coproc::runtime::detail
