// The llama architecture (Llama 2/3, Mistral, SmolLM and the others GGUF stores as "llama"):
// pre-norm blocks of RMSNorm -> grouped-query attention with adjacent-pair RoPE -> residual,
// RMSNorm -> SwiGLU feed-forward -> residual; a final RMSNorm and an output head that may be tied
// to the token embedding.
#include <vector>

#include <fmt/format.h>

#include "llm/arch.h"
#include "llm/device.h"
#include "llm/weight_binding.h"

namespace coproc::llm {

namespace {

class Llama final : public Architecture {
 public:
  std::string_view name() const override { return "llama"; }

  Status load(const GgufFile& file, Hparams* hp, Weights* w) const override {
    if (Status st = read_hparams(file, "llama", hp); !st) return st;
    WeightBinder bind(file, w);
    auto embd = bind.matrix("token_embd.weight", hp->n_embd, -1);
    if (!embd) return embd.error();
    w->token_embd = *embd;
    hp->n_vocab = static_cast<int32_t>(w->token_embd.rows);
    auto out_norm = bind.vector("output_norm.weight", hp->n_embd);
    if (!out_norm) return out_norm.error();
    w->output_norm = *out_norm;
    if (file.find_tensor("output.weight") != nullptr) {
      auto out = bind.matrix("output.weight", hp->n_embd, hp->n_vocab);
      if (!out) return out.error();
      w->output = *out;
    } else {
      w->output = w->token_embd;
      w->tied_output = true;
    }
    if (Status st = bind.check_matmul(w->output); !st) return st;

    const int64_t q_width = static_cast<int64_t>(hp->n_head) * hp->head_dim;
    const int64_t kv_width = static_cast<int64_t>(hp->n_head_kv) * hp->head_dim;
    w->layers.resize(static_cast<size_t>(hp->n_layer));
    for (int32_t i = 0; i < hp->n_layer; ++i) {
      LayerWeights& l = w->layers[static_cast<size_t>(i)];
      auto name = [i](const char* what) { return fmt::format("blk.{}.{}.weight", i, what); };
      struct MatrixSpec {
        Matrix* out;
        const char* what;
        int64_t cols, rows;
      };
      const MatrixSpec specs[] = {
          {&l.wq, "attn_q", hp->n_embd, q_width},       {&l.wk, "attn_k", hp->n_embd, kv_width},
          {&l.wv, "attn_v", hp->n_embd, kv_width},      {&l.wo, "attn_output", q_width, hp->n_embd},
          {&l.gate, "ffn_gate", hp->n_embd, hp->n_ff},  {&l.up, "ffn_up", hp->n_embd, hp->n_ff},
          {&l.down, "ffn_down", hp->n_ff, hp->n_embd},
      };
      for (const MatrixSpec& s : specs) {
        auto m = bind.matrix(name(s.what), s.cols, s.rows);
        if (!m) return m.error();
        if (Status st = bind.check_matmul(*m); !st) return st;
        *s.out = *m;
      }
      auto an = bind.vector(name("attn_norm"), hp->n_embd);
      if (!an) return an.error();
      l.attn_norm = *an;
      auto fn = bind.vector(name("ffn_norm"), hp->n_embd);
      if (!fn) return fn.error();
      l.ffn_norm = *fn;
    }
    return {};
  }

  Status forward(const Model& model, const Batch& batch, KvCache& kv, LlmDevice& dev,
                 float* logits) const override {
    const Hparams& hp = model.hparams();
    const Weights& w = model.weights();
    const int64_t rows = batch.size();
    const int64_t d = hp.n_embd;
    const int64_t q_width = static_cast<int64_t>(hp.n_head) * hp.head_dim;
    const int64_t kv_width = static_cast<int64_t>(hp.n_head_kv) * hp.head_dim;
    dev.reserve(kX, rows * d);
    dev.reserve(kH, rows * d);
    dev.reserve(kQ, rows * q_width);
    dev.reserve(kK, rows * kv_width);
    dev.reserve(kV, rows * kv_width);
    dev.reserve(kAtt, rows * q_width);
    dev.reserve(kGate, rows * hp.n_ff);
    dev.reserve(kUp, rows * hp.n_ff);

    dev.begin_step(batch, kv);
    dev.embed(w.token_embd, kX);
    for (int32_t il = 0; il < hp.n_layer; ++il) {
      const LayerWeights& l = w.layers[static_cast<size_t>(il)];
      dev.rms_norm(kX, l.attn_norm, rows, d, hp.rms_eps, kH);
      dev.matmul(l.wq, kH, rows, kQ);
      dev.matmul(l.wk, kH, rows, kK);
      dev.matmul(l.wv, kH, rows, kV);
      dev.rope(kQ, hp.n_head, hp.head_dim, hp.rope_dim, hp.rope_freq_base);
      dev.rope(kK, hp.n_head_kv, hp.head_dim, hp.rope_dim, hp.rope_freq_base);
      dev.store_kv(il, kK, kV);
      dev.attention(il, kQ, kAtt);
      dev.matmul(l.wo, kAtt, rows, kH);
      dev.add(kX, kH, rows * d);

      dev.rms_norm(kX, l.ffn_norm, rows, d, hp.rms_eps, kH);
      dev.matmul(l.gate, kH, rows, kGate);
      dev.matmul(l.up, kH, rows, kUp);
      dev.swiglu(kGate, kUp, rows * hp.n_ff);
      dev.matmul(l.down, kGate, rows, kH);
      dev.add(kX, kH, rows * d);
    }

    // Only the rows that asked for logits go through the final norm and the output head.
    std::vector<int32_t> out_rows;
    for (int64_t r = 0; r < rows; ++r) {
      if (batch.entries[static_cast<size_t>(r)].logits) out_rows.push_back(static_cast<int32_t>(r));
    }
    if (out_rows.empty()) return dev.finish();
    const auto n_out = static_cast<int64_t>(out_rows.size());
    dev.reserve(kOut, n_out * d);
    dev.reserve(kLogits, n_out * hp.n_vocab);
    dev.copy_rows(kX, out_rows, d, kH);
    dev.rms_norm(kH, w.output_norm, n_out, d, hp.rms_eps, kOut);
    dev.matmul(w.output, kOut, n_out, kLogits);
    return dev.read(kLogits, n_out * hp.n_vocab, logits);
  }

 private:
  // The activation buffers of the pass.
  enum : Act { kX, kH, kQ, kK, kV, kAtt, kGate, kUp, kOut, kLogits };
};

}  // namespace

const Architecture& llama_architecture() {
  static const Llama arch;
  return arch;
}

}  // namespace coproc::llm
