// llama.cpp's side of `coproc-bench llm`: its own benchmarks, run as child processes from a bin/
// folder that tools/llm/build_llamacpp.sh builds, on the same GGUF file and threads.
//
//   llama-bench -m MODEL -t THREADS -p PROMPT -n DECODE -r REPETITIONS -o json
//     pp<PROMPT>: one batch of PROMPT tokens; tg<DECODE>: DECODE single-token steps.
//   llama-batched-bench -m MODEL -t THREADS -c CTX -b 2048 -ub 512 -npp BATCHED_PROMPT
//                       -ntg DECODE -npl N1,N2,... --output-format jsonl
//     for each N: N sequences prefilled with BATCHED_PROMPT tokens each, then DECODE steps of one
//     token for every sequence; its S_TG (speed_tg) is the aggregate decode tokens/s.
//
// The children's stdout is parsed (JSON from llama-bench, JSON lines from llama-batched-bench);
// their stderr is kept only to explain a failure. Errors are values: missing binaries are
// kNotFound, a child that fails or prints something unparsable is kInternal, with its command
// line and the tail of its stderr in the message.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "coproc/base/result.h"

namespace coproc::bench {

struct LlamaCppBenchOptions {
  std::string bin_dir;  // holds llama-bench and llama-batched-bench
  std::string model_path;
  int threads = 0;  // 0: every core
  int prompt_tokens = 512;
  int decode_tokens = 128;
  int batched_prompt_tokens = 128;
  std::vector<int> sequences = {1, 4, 16};
  int repetitions = 5;  // llama-bench -r; llama-batched-bench runs each case once
};

// One llama-bench test: its mean over the repetitions and the best repetition.
struct LlamaCppRate {
  double mean_tokens_per_s = 0;
  double best_tokens_per_s = 0;
};

// One llama-batched-bench case (one -npl value).
struct LlamaCppBatched {
  int sequences = 0;
  double decode_tokens_per_s = 0;   // S_TG: all sequences' decode tokens over the decode time
  double prompt_tokens_per_s = 0;   // S_PP: all sequences' prompt tokens over the prefill time
};

struct LlamaCppBench {
  LlamaCppRate prompt;  // pp<prompt_tokens>
  LlamaCppRate decode;  // tg<decode_tokens>
  std::vector<LlamaCppBatched> batched;  // in the order of options.sequences
  std::string build_commit;              // as llama-bench reports it, e.g. "0c1e570"
  std::vector<std::string> commands;     // the exact command lines that ran, for the report
};

// Runs both benchmarks (tens of seconds at 2 threads on SmolLM2-135M).
Result<LlamaCppBench> run_llamacpp_bench(const LlamaCppBenchOptions& options);

// The parsers, apart so they can be tested on recorded output.
// llama-bench -o json: the pp (n_prompt = prompt_tokens, n_gen 0) and tg (n_prompt 0, n_gen =
// decode_tokens) entries; build_commit from either.
Result<LlamaCppBench> parse_llama_bench_json(std::string_view json, int prompt_tokens,
                                             int decode_tokens);
// llama-batched-bench --output-format jsonl: one entry per line with "pl", "speed_tg", "speed_pp";
// lines that are not JSON objects are skipped.
Result<std::vector<LlamaCppBatched>> parse_batched_bench_jsonl(std::string_view jsonl);

}  // namespace coproc::bench
