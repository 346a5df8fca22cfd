#include "llm/weight_binding.h"

#include <cmath>

#include <fmt/format.h>

#include "coproc/kernels/quant_matmul.h"

namespace coproc::llm {

namespace {

Error bad(std::string message) { return make_error(ErrorCode::kBadModel, std::move(message)); }

// Bounds far above any model we could run, so that a hostile file cannot make the loader size
// buffers from absurd values.
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxWidth = 1 << 17;
constexpr int64_t kMaxHeadDim = 512;
constexpr int64_t kMaxContext = 1 << 24;
// The format's default when rope.freq_base is absent.
constexpr double kDefaultFreqBase = 10000.0;

Status get_bounded(const GgufFile& file, const std::string& key, int64_t lo, int64_t hi, int32_t* out) {
  auto v = file.get_int(key);
  if (!v) return v.error();
  if (*v < lo || *v > hi) return bad(fmt::format("key '{}' = {} is outside [{}, {}]", key, *v, lo, hi));
  *out = static_cast<int32_t>(*v);
  return {};
}

}  // namespace

Status read_hparams(const GgufFile& file, std::string_view prefix, Hparams* hp) {
  const std::string p(prefix);
  hp->arch = p;
  if (Status st = get_bounded(file, p + ".block_count", 1, kMaxLayers, &hp->n_layer); !st) return st;
  if (Status st = get_bounded(file, p + ".embedding_length", 1, kMaxWidth, &hp->n_embd); !st) return st;
  if (Status st = get_bounded(file, p + ".attention.head_count", 1, kMaxWidth, &hp->n_head); !st) return st;
  hp->n_head_kv = hp->n_head;
  if (file.find(p + ".attention.head_count_kv") != nullptr) {
    if (Status st = get_bounded(file, p + ".attention.head_count_kv", 1, hp->n_head, &hp->n_head_kv); !st) return st;
  }
  if (Status st = get_bounded(file, p + ".feed_forward_length", 1, kMaxWidth * 8, &hp->n_ff); !st) return st;
  if (Status st = get_bounded(file, p + ".context_length", 1, kMaxContext, &hp->n_ctx_train); !st) return st;
  if (hp->n_embd % hp->n_head != 0) {
    return bad(fmt::format("'{}.embedding_length' {} is not a multiple of head_count {}", p, hp->n_embd, hp->n_head));
  }
  if (hp->n_head % hp->n_head_kv != 0) {
    return bad(fmt::format("'{}.attention.head_count' {} is not a multiple of head_count_kv {}", p, hp->n_head,
                           hp->n_head_kv));
  }
  hp->head_dim = hp->n_embd / hp->n_head;
  if (hp->head_dim % 2 != 0 || hp->head_dim > kMaxHeadDim) {
    return bad(fmt::format("head size {} must be even and at most {}", hp->head_dim, kMaxHeadDim));
  }
  hp->rope_dim = hp->head_dim;
  if (file.find(p + ".rope.dimension_count") != nullptr) {
    if (Status st = get_bounded(file, p + ".rope.dimension_count", 2, hp->head_dim, &hp->rope_dim); !st) return st;
    if (hp->rope_dim % 2 != 0) return bad(fmt::format("'{}.rope.dimension_count' {} is odd", p, hp->rope_dim));
  }
  double base = kDefaultFreqBase;
  if (file.find(p + ".rope.freq_base") != nullptr) {
    auto b = file.get_float(p + ".rope.freq_base");
    if (!b) return b.error();
    base = *b;
  }
  if (!(base > 1.0) || !std::isfinite(base)) return bad(fmt::format("'{}.rope.freq_base' {} must be > 1", p, base));
  hp->rope_freq_base = static_cast<float>(base);
  auto eps = file.get_float(p + ".attention.layer_norm_rms_epsilon");
  if (!eps) return eps.error();
  if (!(*eps > 0.0) || *eps > 1.0) {
    return bad(fmt::format("'{}.attention.layer_norm_rms_epsilon' {} must be in (0, 1]", p, *eps));
  }
  hp->rms_eps = static_cast<float>(*eps);
  return {};
}

Result<const TensorInfo*> WeightBinder::find(const std::string& name) const {
  const TensorInfo* t = file_.find_tensor(name);
  if (t == nullptr) return bad(fmt::format("tensor '{}' is missing", name));
  const GgmlTypeTraits traits = type_traits(static_cast<uint32_t>(t->type));
  if (!traits.supported) {
    return make_error(ErrorCode::kUnsupported,
                      fmt::format("tensor '{}' has type {}, which coproc does not run (it runs f32, f16, "
                                  "bf16, q8_0, q4_0 and q4_1)", name, traits.name));
  }
  return t;
}

const float* WeightBinder::to_f32(const TensorInfo& t) {
  if (t.type == GgmlType::kF32) {
    // The data section is aligned (to 32 by default), so F32 tensors are float-aligned in place.
    return reinterpret_cast<const float*>(t.data);
  }
  std::vector<float>& copy = w_->owned.emplace_back(static_cast<size_t>(t.elements));
  dequantize_row(t.type, t.data, copy.data(), t.elements);
  return copy.data();
}

const void* WeightBinder::pack(const Matrix& m) {
  kernels::cpu::QuantWeight type = kernels::cpu::QuantWeight::kQ8_0;
  switch (m.type) {
    case GgmlType::kQ4_0: type = kernels::cpu::QuantWeight::kQ4_0; break;
    case GgmlType::kQ4_1: type = kernels::cpu::QuantWeight::kQ4_1; break;
    case GgmlType::kQ8_0: type = kernels::cpu::QuantWeight::kQ8_0; break;
    default: return nullptr;  // no matrix kernel: check_matmul refuses it where it is multiplied
  }
  const int64_t bytes = kernels::cpu::quant_packed_bytes(type, m.rows, m.cols);
  constexpr size_t kAlign = 64;
  void* p = std::aligned_alloc(kAlign, (static_cast<size_t>(bytes) + kAlign - 1) / kAlign * kAlign);
  COPROC_CHECK(p != nullptr);
  w_->packed.emplace_back(p);
  kernels::cpu::quant_pack(type, m.data, m.rows, m.cols, p);
  return p;
}

Result<Matrix> WeightBinder::matrix(const std::string& name, int64_t cols, int64_t rows) {
  auto t = find(name);
  if (!t) return t.error();
  const TensorInfo& info = **t;
  if (info.dims.size() != 2 || info.dims[0] != cols || (rows >= 0 && info.dims[1] != rows)) {
    return bad(fmt::format("tensor '{}' has shape [{}{}], expected [{}, {}]", name, info.dims[0],
                           info.dims.size() > 1 ? fmt::format(", {}", info.dims[1]) : std::string(), cols,
                           rows >= 0 ? std::to_string(rows) : std::string("any")));
  }
  Matrix m;
  m.name = info.name;
  m.cols = info.dims[0];
  m.rows = info.dims[1];
  if (info.type == GgmlType::kF16 || info.type == GgmlType::kBF16 || info.type == GgmlType::kF32) {
    m.type = GgmlType::kF32;
    m.data = to_f32(info);
  } else {
    m.type = info.type;
    m.data = info.data;
    m.packed = pack(m);
  }
  return m;
}

Result<const float*> WeightBinder::vector(const std::string& name, int64_t n) {
  auto t = find(name);
  if (!t) return t.error();
  const TensorInfo& info = **t;
  if (info.elements != n || info.dims.size() != 1) {
    return bad(fmt::format("tensor '{}' has {} elements in {} dims, expected a vector of {}", name,
                           info.elements, info.dims.size(), n));
  }
  if (info.type != GgmlType::kF32 && info.type != GgmlType::kF16 && info.type != GgmlType::kBF16) {
    return make_error(ErrorCode::kUnsupported,
                      fmt::format("tensor '{}' has type {}; norms must be f32, f16 or bf16", name,
                                  type_name(static_cast<uint32_t>(info.type))));
  }
  return to_f32(info);
}

Status WeightBinder::check_matmul(const Matrix& m) const {
  switch (m.type) {
    case GgmlType::kF32: case GgmlType::kQ4_0: case GgmlType::kQ4_1: case GgmlType::kQ8_0: return {};
    default:
      return make_error(ErrorCode::kUnsupported,
                        fmt::format("tensor '{}' has type {}, which has no matrix kernel", m.name,
                                    type_name(static_cast<uint32_t>(m.type))));
  }
}

}  // namespace coproc::llm
