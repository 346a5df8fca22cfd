// The llama architecture (Llama 2/3, Mistral, SmolLM and the others GGUF stores as "llama"):
// pre-norm blocks of RMSNorm -> grouped-query attention with adjacent-pair RoPE -> residual,
// RMSNorm -> SwiGLU feed-forward -> residual; a final RMSNorm and an output head that may be tied
// to the token embedding.
#include <algorithm>

#include <fmt/format.h>

#include "llm/arch.h"
#include "llm/kv_cache.h"
#include "llm/layers.h"
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

  void forward(const Model& model, const Batch& batch, KvCache& kv, Scratch& s,
               float* logits) const override {
    const Hparams& hp = model.hparams();
    const Weights& w = model.weights();
    const int64_t rows = batch.size();
    const int64_t d = hp.n_embd;
    const int64_t q_width = static_cast<int64_t>(hp.n_head) * hp.head_dim;
    const int64_t kv_width = static_cast<int64_t>(hp.n_head_kv) * hp.head_dim;
    s.resize(hp, rows);

    std::vector<int32_t> tokens(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) tokens[static_cast<size_t>(r)] = batch.entries[static_cast<size_t>(r)].token;
    embed(w.token_embd, tokens, s.x.data());

    for (int32_t il = 0; il < hp.n_layer; ++il) {
      const LayerWeights& l = w.layers[static_cast<size_t>(il)];
      rms_norm(s.x.data(), l.attn_norm, rows, d, hp.rms_eps, s.h.data());
      matmul(l.wq, s.h.data(), rows, s.q.data(), q_width, s.xq);
      matmul(l.wk, s.h.data(), rows, s.k.data(), kv_width, s.xq);
      matmul(l.wv, s.h.data(), rows, s.v.data(), kv_width, s.xq);
      for (int64_t r = 0; r < rows; ++r) {
        const BatchEntry& e = batch.entries[static_cast<size_t>(r)];
        rope(s.q.data() + r * q_width, hp.n_head, hp.head_dim, hp.rope_dim, e.pos, hp.rope_freq_base);
        rope(s.k.data() + r * kv_width, hp.n_head_kv, hp.head_dim, hp.rope_dim, e.pos, hp.rope_freq_base);
        store_kv(kv, il, e, s.k.data() + r * kv_width, s.v.data() + r * kv_width, hp);
      }
      attention(hp, il, batch.entries, s.q.data(), kv, s.att.data());
      matmul(l.wo, s.att.data(), rows, s.h.data(), d, s.xq);
      add_in_place(s.x.data(), s.h.data(), rows * d);

      rms_norm(s.x.data(), l.ffn_norm, rows, d, hp.rms_eps, s.h.data());
      matmul(l.gate, s.h.data(), rows, s.gate.data(), hp.n_ff, s.xq);
      matmul(l.up, s.h.data(), rows, s.up.data(), hp.n_ff, s.xq);
      swiglu(s.gate.data(), s.up.data(), rows * hp.n_ff);
      matmul(l.down, s.gate.data(), rows, s.h.data(), d, s.xq);
      add_in_place(s.x.data(), s.h.data(), rows * d);
    }

    // Only the rows that asked for logits go through the final norm and the output head.
    int64_t n_out = 0;
    for (int64_t r = 0; r < rows; ++r) {
      if (!batch.entries[static_cast<size_t>(r)].logits) continue;
      rms_norm(s.x.data() + r * d, w.output_norm, 1, d, hp.rms_eps, s.h.data() + n_out * d);
      ++n_out;
    }
    if (n_out > 0) matmul(w.output, s.h.data(), n_out, logits, hp.n_vocab, s.xq);
  }

 private:
  static void store_kv(KvCache& kv, int32_t layer, const BatchEntry& e, const float* k,
                       const float* v, const Hparams& hp) {
    const int32_t block = kv.block_table(e.seq)[static_cast<size_t>(e.pos / kBlockTokens)];
    const int32_t slot = e.pos % kBlockTokens;
    for (int32_t h = 0; h < hp.n_head_kv; ++h) {
      std::copy_n(k + static_cast<int64_t>(h) * hp.head_dim, hp.head_dim, kv.key(layer, block, h, slot));
      std::copy_n(v + static_cast<int64_t>(h) * hp.head_dim, hp.head_dim, kv.value(layer, block, h, slot));
    }
  }
};

}  // namespace

const Architecture& llama_architecture() {
  static const Llama arch;
  return arch;
}

}  // namespace coproc::llm
