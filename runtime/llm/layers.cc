#include "llm/layers.h"

#include <algorithm>
#include <cmath>

#include "coproc/kernels/cpu.h"
#include "coproc/kernels/parallel.h"
#include "llm/kv_cache.h"

namespace coproc::llm {

namespace kc = kernels::cpu;

namespace {

// A dot product with a fixed summation order (16 lanes, then lanes 0..15 in order), so that it
// vectorises without -ffast-math and gives the same bits on every call.
float dot(const float* a, const float* b, int64_t n) {
  float lane[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) lane[j] += a[i + j] * b[i + j];
  }
  for (; i < n; ++i) lane[i % 16] += a[i] * b[i];
  float s = 0;
  for (float l : lane) s += l;
  return s;
}

bool quantized(GgmlType t) {
  return t == GgmlType::kQ4_0 || t == GgmlType::kQ4_1 || t == GgmlType::kQ8_0;
}

kc::QuantWeight quant_weight(GgmlType t) {
  switch (t) {
    case GgmlType::kQ4_0: return kc::QuantWeight::kQ4_0;
    case GgmlType::kQ4_1: return kc::QuantWeight::kQ4_1;
    default: return kc::QuantWeight::kQ8_0;
  }
}

// Work items below this many weight rows run on one thread.
constexpr int64_t kRowsPerTask = 16;

}  // namespace

void embed(const Matrix& table, std::span<const int32_t> tokens, float* x) {
  const int64_t rb = row_bytes(table.type, table.cols);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto* row = static_cast<const uint8_t*>(table.data) + rb * tokens[i];
    dequantize_row(table.type, row, x + static_cast<int64_t>(i) * table.cols, table.cols);
  }
}

void rms_norm(const float* x, const float* w, int64_t rows, int64_t n, float eps, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    const float mean_sq = dot(xr, xr, n) / static_cast<float>(n);
    const float scale = 1.0f / std::sqrt(mean_sq + eps);
    for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * scale * w[i];
  }
}

void matmul(const Matrix& w, const float* x, int64_t rows, float* y, int64_t ldy,
            std::vector<kc::BlockQ8A>& xq) {
  const int64_t k = w.cols;
  if (quantized(w.type)) {
    const int64_t blocks = k / kQuantBlock;
    if (xq.size() < static_cast<size_t>(rows * blocks)) xq.resize(static_cast<size_t>(rows * blocks));
    for (int64_t r = 0; r < rows; ++r) kc::quantize_q8a(x + r * k, k, xq.data() + r * blocks);
    kc::quant_matmul_packed(quant_weight(w.type), w.packed, w.rows, k, xq.data(), rows, y, ldy);
    return;
  }
  // Float weights (stored F32, or converted from F16/BF16 at load): one fixed-order dot per output.
  const auto* wf = static_cast<const float*>(w.data);
  kc::parallel_for(w.rows, kRowsPerTask, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      for (int64_t r = 0; r < rows; ++r) y[r * ldy + j] = dot(wf + j * k, x + r * k, k);
    }
  });
}

void rope(float* x, int32_t n_heads, int32_t head_dim, int32_t rope_dim, int32_t pos,
          float freq_base) {
  // Angles in double: cos/sin of pos * theta lose little even at position 8191.
  float cs[256], sn[256];
  const int32_t pairs = std::min(rope_dim / 2, 256);
  for (int32_t i = 0; i < pairs; ++i) {
    const double theta = std::pow(static_cast<double>(freq_base), -2.0 * i / rope_dim);
    const double angle = static_cast<double>(pos) * theta;
    cs[i] = static_cast<float>(std::cos(angle));
    sn[i] = static_cast<float>(std::sin(angle));
  }
  for (int32_t h = 0; h < n_heads; ++h) {
    float* xh = x + static_cast<int64_t>(h) * head_dim;
    for (int32_t i = 0; i < pairs; ++i) {
      const float a = xh[2 * i];
      const float b = xh[2 * i + 1];
      xh[2 * i] = a * cs[i] - b * sn[i];
      xh[2 * i + 1] = a * sn[i] + b * cs[i];
    }
  }
}

void attention(const Hparams& hp, int32_t layer, std::span<const BatchEntry> entries,
               const float* q, const KvCache& kv, float* out) {
  const int32_t group = hp.n_head / hp.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim));
  const kc::PagedKvView view = kv.layer_view(layer);
  const int64_t group_floats = static_cast<int64_t>(group) * hp.head_dim;
  // One work item per (row, KV head): the group of query heads that share it.
  const auto n_items = static_cast<int64_t>(entries.size()) * hp.n_head_kv;
  kc::parallel_for(n_items, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const BatchEntry& e = entries[static_cast<size_t>(item / hp.n_head_kv)];
      const auto kv_head = static_cast<int32_t>(item % hp.n_head_kv);
      // q and out are [rows][n_head][head_dim]: the group's heads are contiguous.
      kc::paged_attention_group(q + item * group_floats, group, view, kv_head, kv.block_table(e.seq).data(),
                                e.pos + 1, scale, out + item * group_floats);
    }
  });
}

void swiglu(float* gate, const float* up, int64_t n) {
  // silu(g) = g * sigmoid(g), with the kernels' vectorised sigmoid, a chunk at a time.
  constexpr int64_t kChunk = 256;
  float sig[kChunk];
  for (int64_t i = 0; i < n; i += kChunk) {
    const int64_t len = std::min(kChunk, n - i);
    kc::sigmoid(gate + i, sig, len);
    for (int64_t j = 0; j < len; ++j) gate[i + j] = gate[i + j] * sig[j] * up[i + j];
  }
}

void add_in_place(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace coproc::llm
