#include "llm/llm_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "common/machine.h"
#include "coproc/kernels/parallel.h"
#include "coproc/kernels/quant_matmul.h"
#include "llm/context.h"
#include "llm/llamacpp.h"

namespace coproc::bench {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Case {
  std::string name;
  int64_t tokens_per_step = 0;  // 0: a prompt case (no per-token weight traffic to report)
  double coproc_tokens_per_s = 0;
  double llamacpp_tokens_per_s = 0;  // 0: not measured
};

// Streams a buffer far larger than the caches with every thread, best of a few passes: the read
// bandwidth the decode cases are held against.
double memory_bandwidth_gb_s() {
  constexpr size_t kBytes = size_t{512} << 20;
  std::vector<uint64_t> buf(kBytes / sizeof(uint64_t), 1);
  double best = 0;
  for (int pass = 0; pass < 4; ++pass) {
    std::vector<uint64_t> partial(64, 0);
    const auto t0 = Clock::now();
    const auto n = static_cast<int64_t>(buf.size());
    kernels::cpu::parallel_for(n, n / kernels::cpu::intra_op_threads(), [&](int64_t b, int64_t e) {
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int64_t i = b; i + 4 <= e; i += 4) {
        s0 += buf[static_cast<size_t>(i)];
        s1 += buf[static_cast<size_t>(i + 1)];
        s2 += buf[static_cast<size_t>(i + 2)];
        s3 += buf[static_cast<size_t>(i + 3)];
      }
      partial[static_cast<size_t>(b * 63 / n)] = s0 + s1 + s2 + s3;
    });
    const double s = seconds_since(t0);
    uint64_t sink = 0;
    for (uint64_t p : partial) sink += p;
    if (sink != 0) best = std::max(best, static_cast<double>(kBytes) / s / 1e9);
  }
  return best;
}

class Runner {
 public:
  Runner(std::shared_ptr<const llm::Model> model, int64_t kv_tokens)
      : model_(model), ctx_(model, {.kv_tokens = kv_tokens, .max_context = 0, .max_step_tokens = 512}),
        rng_(42) {}

  // Prefills `n` tokens of one fresh sequence in one batch; seconds.
  double prompt(int n) {
    reset(1);
    llm::Batch b;
    for (int i = 0; i < n; ++i) b.add(0, i, token(), i == n - 1);
    const auto t0 = Clock::now();
    run(b);
    return seconds_since(t0);
  }

  // `seqs` sequences, each prefilled with `prompt` tokens (untimed, skipped when 0), then `steps`
  // steps of one token per sequence; seconds of the steps.
  double decode(int seqs, int prompt, int steps) {
    reset(seqs);
    llm::Batch b;
    if (prompt > 0) {
      for (int s = 0; s < seqs; ++s) {
        for (int i = 0; i < prompt; ++i) b.add(s, i, token(), i == prompt - 1);
      }
      run(b);
    }
    const auto t0 = Clock::now();
    for (int step = 0; step < steps; ++step) {
      b.clear();
      for (int s = 0; s < seqs; ++s) b.add(s, prompt + step, token(), true);
      run(b);
    }
    return seconds_since(t0);
  }

 private:
  void reset(int seqs) {
    for (int s = 0; s < 256; ++s) ctx_.remove_sequence(s);
    for (int s = 0; s < seqs; ++s) (void)ctx_.add_sequence(s);
  }
  int32_t token() {
    return std::uniform_int_distribution<int32_t>(0, model_->hparams().n_vocab - 1)(rng_);
  }
  void run(const llm::Batch& b) {
    const Status st = ctx_.decode(b, &logits_);
    if (!st) {
      std::fprintf(stderr, "coproc-bench llm: decode failed: %s\n", st.error().message.c_str());
      std::exit(1);
    }
  }

  std::shared_ptr<const llm::Model> model_;
  llm::Context ctx_;
  std::mt19937 rng_;
  std::vector<float> logits_;
};

template <class F>
double best_of(int reps, F&& f) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) best = std::min(best, f());
  return best;
}

}  // namespace

int run_llm_bench(const LlmBenchOptions& o) {
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  kernels::cpu::set_intra_op_threads(threads);
  auto model = llm::Model::load(o.model_path);
  if (!model) {
    std::fprintf(stderr, "coproc-bench llm: %s\n", model.error().message.c_str());
    return 2;
  }
  const int max_seqs = o.sequences.empty() ? 1 : *std::max_element(o.sequences.begin(), o.sequences.end());
  const int64_t kv_tokens = std::max<int64_t>(
      {o.prompt_tokens, o.decode_tokens + 1,
       static_cast<int64_t>(max_seqs) * (o.batched_prompt_tokens + o.decode_tokens + llm::kBlockTokens)});
  Runner runner(*model, kv_tokens);

  std::vector<Case> cases;
  // Warm-up: page the mapped weights in and size the buffers.
  runner.decode(1, 0, 2);
  const double pp_s = best_of(o.repetitions, [&] { return runner.prompt(o.prompt_tokens); });
  cases.push_back({fmt::format("pp{}", o.prompt_tokens), 0, o.prompt_tokens / pp_s, 0});
  const double tg_s = best_of(o.repetitions, [&] { return runner.decode(1, 0, o.decode_tokens); });
  cases.push_back({fmt::format("tg{}", o.decode_tokens), 1, o.decode_tokens / tg_s, 0});
  for (int n : o.sequences) {
    const double s = best_of(o.repetitions, [&] { return runner.decode(n, o.batched_prompt_tokens, o.decode_tokens); });
    cases.push_back({fmt::format("decode{}", n), n, static_cast<double>(n) * o.decode_tokens / s, 0});
  }
  // llama.cpp's side, on the same file and threads, after ours (nothing of ours runs meanwhile).
  std::vector<std::string> llamacpp_commands;
  std::string llamacpp_commit;
  if (!o.llamacpp_dir.empty()) {
    LlamaCppBenchOptions lo;
    lo.bin_dir = o.llamacpp_dir;
    lo.model_path = o.model_path;
    lo.threads = threads;
    lo.prompt_tokens = o.prompt_tokens;
    lo.decode_tokens = o.decode_tokens;
    lo.batched_prompt_tokens = o.batched_prompt_tokens;
    lo.sequences = o.sequences;
    lo.repetitions = o.repetitions;
    auto theirs = run_llamacpp_bench(lo);
    if (!theirs) {
      std::fprintf(stderr, "coproc-bench llm: llama.cpp: %s\n", theirs.error().message.c_str());
      return 1;
    }
    // Best of the repetitions, as for ours.
    cases[0].llamacpp_tokens_per_s = theirs->prompt.best_tokens_per_s;
    cases[1].llamacpp_tokens_per_s = theirs->decode.best_tokens_per_s;
    for (size_t i = 0; i < theirs->batched.size() && i + 2 < cases.size(); ++i) {
      cases[i + 2].llamacpp_tokens_per_s = theirs->batched[i].decode_tokens_per_s;
    }
    llamacpp_commands = theirs->commands;
    llamacpp_commit = theirs->build_commit;
  }
  const double bandwidth = memory_bandwidth_gb_s();
  const int64_t step_bytes = (*model)->weight_bytes_per_step();
  const std::string cpu = cpu_model();
  const char* isa = kernels::cpu::quant_isa_name(kernels::cpu::best_quant_isa());

  if (o.json) {
    std::string out = fmt::format(
        "{{\"cpu\":\"{}\",\"threads\":{},\"kernels\":\"{}\",\"model\":\"{}\",\"weight_bytes_per_step\":{},"
        "\"memory_bandwidth_gb_s\":{:.2f},\"cases\":[",
        cpu, threads, isa, o.model_path, step_bytes, bandwidth);
    for (size_t i = 0; i < cases.size(); ++i) {
      const Case& c = cases[i];
      out += fmt::format("{}{{\"case\":\"{}\",\"cpu\":\"{}\",\"coproc_tokens_per_s\":{:.2f},\"llamacpp_tokens_per_s\":{}",
                         i ? "," : "", c.name, cpu, c.coproc_tokens_per_s,
                         c.llamacpp_tokens_per_s > 0 ? fmt::format("{:.2f}", c.llamacpp_tokens_per_s) : "null");
      if (c.llamacpp_tokens_per_s > 0) {
        out += fmt::format(",\"ratio\":{:.3f}", c.coproc_tokens_per_s / c.llamacpp_tokens_per_s);
      }
      if (c.tokens_per_step > 0) {
        const double steps_per_s = c.coproc_tokens_per_s / static_cast<double>(c.tokens_per_step);
        out += fmt::format(",\"weight_bytes_per_token\":{},\"weight_gb_s\":{:.2f}",
                           step_bytes / c.tokens_per_step, steps_per_s * static_cast<double>(step_bytes) / 1e9);
      }
      out += "}";
    }
    out += fmt::format("],\"llamacpp_commit\":\"{}\",\"llamacpp_commands\":[", llamacpp_commit);
    for (size_t i = 0; i < llamacpp_commands.size(); ++i) {
      out += fmt::format("{}\"{}\"", i ? "," : "", llamacpp_commands[i]);
    }
    out += "]}\n";
    std::fputs(out.c_str(), stdout);
    return 0;
  }
  std::printf("cpu: %s, %d threads, quantized kernels %s\nmodel: %s\n", cpu.c_str(), threads, isa,
              o.model_path.c_str());
  std::printf("weights read per step: %.1f MB; memory read bandwidth (this run): %.1f GB/s\n\n",
              static_cast<double>(step_bytes) / 1e6, bandwidth);
  std::printf("%-10s %14s %14s %8s %16s %12s\n", "case", "coproc tok/s", "llama.cpp tok/s", "ratio",
              "weight MB/token", "weight GB/s");
  for (const Case& c : cases) {
    std::string theirs = c.llamacpp_tokens_per_s > 0 ? fmt::format("{:.1f}", c.llamacpp_tokens_per_s) : "-";
    std::string ratio = c.llamacpp_tokens_per_s > 0
                            ? fmt::format("{:.2f}x", c.coproc_tokens_per_s / c.llamacpp_tokens_per_s)
                            : "-";
    std::string per_token = "-", gb_s = "-";
    if (c.tokens_per_step > 0) {
      per_token = fmt::format("{:.1f}", static_cast<double>(step_bytes) / static_cast<double>(c.tokens_per_step) / 1e6);
      gb_s = fmt::format("{:.1f}", c.coproc_tokens_per_s / static_cast<double>(c.tokens_per_step) *
                                       static_cast<double>(step_bytes) / 1e9);
    }
    std::printf("%-10s %14.1f %14s %8s %16s %12s\n", c.name.c_str(), c.coproc_tokens_per_s, theirs.c_str(),
                ratio.c_str(), per_token.c_str(), gb_s.c_str());
  }
  for (const std::string& c : llamacpp_commands) std::printf("llama.cpp (%s): %s\n", llamacpp_commit.c_str(), c.c_str());
  return 0;
}

}  // namespace coproc::bench
