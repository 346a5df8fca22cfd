#include "llm/context.h"

#include <algorithm>
#include <unordered_map>

#include <fmt/format.h>

#include "llm/arch.h"

namespace coproc::llm {

namespace {

Error invalid(std::string message) { return make_error(ErrorCode::kInvalidArgument, std::move(message)); }

}  // namespace

Context::Context(std::shared_ptr<const Model> model, ContextOptions options)
    : Context(std::move(model), std::move(options), true) {
  COPROC_CHECK(options_.device.kind == DeviceKind::kCpu);
  device_ = make_cpu_device(*model_);
}

Context::Context(std::shared_ptr<const Model> model, ContextOptions options, bool host_kv)
    : model_(std::move(model)),
      options_(std::move(options)),
      max_context_(options_.max_context > 0 ? std::min(options_.max_context, model_->hparams().n_ctx_train)
                                            : model_->hparams().n_ctx_train),
      kv_(model_->hparams(), KvCacheOptions{options_.kv_tokens, host_kv}) {
  options_.max_step_tokens = std::max(options_.max_step_tokens, 1);
}

Result<std::unique_ptr<Context>> Context::create(std::shared_ptr<const Model> model, ContextOptions options) {
  // Only the CPU reads the KvCache's own storage; another device keeps the keys and values itself.
  const bool host_kv = options.device.kind == DeviceKind::kCpu;
  std::unique_ptr<Context> ctx(new Context(std::move(model), std::move(options), host_kv));
  auto device = make_device(ctx->options_.device, *ctx->model_, ctx->kv_);
  if (!device) return device.error();
  ctx->device_ = std::move(device).value();
  return ctx;
}

Status Context::check(const Batch& batch) const {
  if (batch.entries.empty()) return invalid("empty batch");
  const int32_t n_vocab = model_->hparams().n_vocab;
  // The next position each sequence must continue at, and its new length.
  std::unordered_map<SeqId, int32_t> next;
  for (size_t i = 0; i < batch.entries.size(); ++i) {
    const BatchEntry& e = batch.entries[i];
    if (!kv_.has_sequence(e.seq)) return invalid(fmt::format("entry {}: sequence {} does not exist", i, e.seq));
    if (e.token < 0 || e.token >= n_vocab) {
      return invalid(fmt::format("entry {}: token {} is outside the vocabulary [0, {})", i, e.token, n_vocab));
    }
    auto [it, fresh] = next.try_emplace(e.seq, kv_.length(e.seq));
    if (e.pos != it->second) {
      return invalid(fmt::format("entry {}: sequence {} continues at position {}, not {}", i, e.seq,
                                 it->second, e.pos));
    }
    if (e.pos >= max_context_) {
      return make_error(ErrorCode::kResourceExhausted,
                        fmt::format("entry {}: position {} is past the context of {} tokens", i, e.pos,
                                    max_context_));
    }
    ++it->second;
  }
  int64_t blocks = 0;
  for (const auto& [seq, length] : next) {
    blocks += std::max<int64_t>(0, kv_.blocks_needed(length) - static_cast<int64_t>(kv_.block_table(seq).size()));
  }
  if (blocks > kv_.pool().n_free()) {
    return make_error(ErrorCode::kResourceExhausted,
                      fmt::format("KV cache full: the batch needs {} more blocks, {} of {} free", blocks,
                                  kv_.pool().n_free(), kv_.pool().n_blocks()));
  }
  return {};
}

Status Context::decode(const Batch& batch, std::vector<float>* logits) {
  if (Status st = check(batch); !st) return st;
  const int32_t n_vocab = model_->hparams().n_vocab;
  logits->resize(static_cast<size_t>(batch.n_logits()) * n_vocab);
  // Reserve every sequence's blocks up front (check() showed they fit).
  std::unordered_map<SeqId, int32_t> added;
  for (const BatchEntry& e : batch.entries) ++added[e.seq];
  for (const auto& [seq, n] : added) COPROC_CHECK(kv_.reserve(seq, n).ok());

  // Run in chunks of max_step_tokens entries, in order: a later chunk's attention reads the
  // keys and values the earlier ones stored. Each row's arithmetic is the same either way.
  float* out = logits->data();
  for (size_t begin = 0; begin < batch.entries.size(); begin += static_cast<size_t>(options_.max_step_tokens)) {
    const size_t end = std::min(batch.entries.size(), begin + static_cast<size_t>(options_.max_step_tokens));
    chunk_.entries.assign(batch.entries.begin() + static_cast<ptrdiff_t>(begin),
                          batch.entries.begin() + static_cast<ptrdiff_t>(end));
    if (Status st = model_->arch().forward(*model_, chunk_, kv_, *device_, out); !st) return st;
    out += chunk_.n_logits() * n_vocab;
    for (const BatchEntry& e : chunk_.entries) kv_.set_length(e.seq, e.pos + 1);
  }
  return {};
}

}  // namespace coproc::llm
