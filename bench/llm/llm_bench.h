// coproc-bench llm: the LLM engine in process against llama.cpp on the same GGUF file and the same
// threads, in one run. Cases, as llama.cpp's own benchmarks define them:
//   pp512     prompt processing: 512 tokens of one sequence in one batch (llama-bench pp512)
//   tg128     single-sequence decode: 128 tokens one step at a time from an empty context
//             (llama-bench tg128)
//   decodeN   N sequences, each prefilled with 128 tokens, then 128 steps of one token for each
//             sequence in one batch; aggregate decode tokens/s (llama-batched-bench S_TG with
//             -npp 128 -ntg 128 -npl N)
// Besides tokens/s, decode cases report the weight bytes read per token against the machine's
// memory bandwidth, measured in the same run.
#pragma once

#include <string>
#include <vector>

namespace coproc::bench {

struct LlmBenchOptions {
  std::string model_path;
  int threads = 0;                  // 0: every core
  std::string llamacpp_dir;         // llama.cpp's bin/ (llama-bench, llama-batched-bench); "": none
  std::vector<int> sequences = {4, 16};
  int prompt_tokens = 512;          // pp case
  int decode_tokens = 128;          // tg and decodeN cases
  int batched_prompt_tokens = 128;  // decodeN prompts
  int repetitions = 3;              // best of
  bool json = false;
};

int run_llm_bench(const LlmBenchOptions& options);

}  // namespace coproc::bench
