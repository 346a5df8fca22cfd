// The CPU device: the pieces of layers.h over host buffers, the mapped weights in place and the
// KvCache's own storage. Each piece is one virtual call around the function the forward pass
// called directly before devices existed, so the CPU's per-step cost is unchanged.
#include <algorithm>
#include <cstring>
#include <vector>

#include "llm/device.h"
#include "llm/kv_cache.h"
#include "llm/layers.h"

namespace coproc::llm {

namespace {

class CpuDevice final : public LlmDevice {
 public:
  explicit CpuDevice(const Model& model) : hp_(model.hparams()) {}

  std::string name() const override { return "cpu"; }

  void reserve(Act a, int64_t floats) override {
    if (static_cast<size_t>(a) >= bufs_.size()) bufs_.resize(static_cast<size_t>(a) + 1);
    std::vector<float>& b = bufs_[static_cast<size_t>(a)];
    if (b.size() < static_cast<size_t>(floats)) b.resize(static_cast<size_t>(floats));
  }

  void begin_step(const Batch& batch, KvCache& kv) override {
    batch_ = &batch;
    kv_ = &kv;
    tokens_.resize(batch.entries.size());
    for (size_t r = 0; r < batch.entries.size(); ++r) tokens_[r] = batch.entries[r].token;
  }

  void embed(const Matrix& table, Act x) override { llm::embed(table, tokens_, at(x)); }

  void rms_norm(Act x, const float* w, int64_t rows, int64_t n, float eps, Act y) override {
    llm::rms_norm(at(x), w, rows, n, eps, at(y));
  }

  void matmul(const Matrix& w, Act x, int64_t rows, Act y) override {
    llm::matmul(w, at(x), rows, at(y), w.rows, xq_);
  }

  void rope(Act x, int32_t n_heads, int32_t head_dim, int32_t rope_dim, float freq_base) override {
    const int64_t width = static_cast<int64_t>(n_heads) * head_dim;
    float* p = at(x);
    for (size_t r = 0; r < batch_->entries.size(); ++r) {
      llm::rope(p + static_cast<int64_t>(r) * width, n_heads, head_dim, rope_dim,
                batch_->entries[r].pos, freq_base);
    }
  }

  void store_kv(int32_t layer, Act k, Act v) override {
    const int64_t width = static_cast<int64_t>(hp_.n_head_kv) * hp_.head_dim;
    for (size_t r = 0; r < batch_->entries.size(); ++r) {
      const BatchEntry& e = batch_->entries[r];
      const int32_t block = kv_->block_table(e.seq)[static_cast<size_t>(e.pos / kBlockTokens)];
      const int32_t slot = e.pos % kBlockTokens;
      const float* kr = at(k) + static_cast<int64_t>(r) * width;
      const float* vr = at(v) + static_cast<int64_t>(r) * width;
      for (int32_t h = 0; h < hp_.n_head_kv; ++h) {
        kv_->store(layer, block, h, slot, kr + static_cast<int64_t>(h) * hp_.head_dim,
                   vr + static_cast<int64_t>(h) * hp_.head_dim);
      }
    }
  }

  void attention(int32_t layer, Act q, Act out) override {
    llm::attention(hp_, layer, batch_->entries, at(q), *kv_, at(out));
  }

  void swiglu(Act gate, Act up, int64_t n) override { llm::swiglu(at(gate), at(up), n); }

  void add(Act x, Act y, int64_t n) override { add_in_place(at(x), at(y), n); }

  void copy_rows(Act src, std::span<const int32_t> rows, int64_t width, Act dst) override {
    for (size_t i = 0; i < rows.size(); ++i) {
      std::copy_n(at(src) + rows[i] * width, width, at(dst) + static_cast<int64_t>(i) * width);
    }
  }

  Status read(Act src, int64_t floats, float* host) override {
    std::memcpy(host, at(src), static_cast<size_t>(floats) * sizeof(float));
    return {};
  }

  Status finish() override { return {}; }

 private:
  float* at(Act a) { return bufs_[static_cast<size_t>(a)].data(); }

  const Hparams& hp_;
  std::vector<std::vector<float>> bufs_;
  std::vector<kernels::cpu::BlockQ8A> xq_;
  std::vector<int32_t> tokens_;
  const Batch* batch_ = nullptr;
  KvCache* kv_ = nullptr;
};

}  // namespace

std::unique_ptr<LlmDevice> make_cpu_device(const Model& model) {
  return std::make_unique<CpuDevice>(model);
}

Result<std::unique_ptr<LlmDevice>> make_device(const DeviceChoice& choice, const Model& model,
                                               const KvCache& kv) {
  if (choice.kind == DeviceKind::kOpenCl) return make_opencl_device(choice, model, kv);
  return make_cpu_device(model);
}

}  // namespace coproc::llm
