// coproc-bench llm: its flags, registered here so main.cc only wires the subcommands.
#include "llm/llm_command.h"

#include <memory>

#include "llm/llm_bench.h"

namespace coproc::bench {

Command add_llm_command(CLI::App& app) {
  auto s = std::make_shared<LlmBenchOptions>();
  auto* llm = app.add_subcommand(
      "llm",
      "the LLM engine in process against llama.cpp on the same GGUF file and threads: prompt "
      "processing (pp512), single-sequence decode (tg128) and decode of N sequences per step");
  llm->add_option("--model", s->model_path, "GGUF file")->required()->check(CLI::ExistingFile);
  llm->add_option("--threads", s->threads, "threads on both sides (0: every core)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  llm->add_option("--llamacpp", s->llamacpp_dir,
                  "llama.cpp's bin/ folder (tools/llm/build_llamacpp.sh builds it); without it only "
                  "coproc's side runs");
  llm->add_option("--sequences", s->sequences, "sequences per step for the decodeN cases")
      ->delimiter(',')
      ->check(CLI::Range(1, 256));
  llm->add_option("--prompt", s->prompt_tokens, "tokens of the prompt-processing case")
      ->check(CLI::Range(1, 8192))
      ->capture_default_str();
  llm->add_option("--decode", s->decode_tokens, "tokens each decode case generates per sequence")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  llm->add_option("--batched-prompt", s->batched_prompt_tokens, "prompt tokens of each decodeN sequence")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  llm->add_option("--repetitions", s->repetitions, "each case runs this many times; the best counts")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  llm->add_flag("--json", s->json, "print one JSON object with a `cases` array");
  return {llm, [s] { return run_llm_bench(*s); }};
}

}  // namespace coproc::bench
