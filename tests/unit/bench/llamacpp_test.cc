// The llama.cpp side of `coproc-bench llm`: parsing llama-bench's JSON and llama-batched-bench's
// JSON lines (outputs recorded from the llama.cpp build of tools/llm/build_llamacpp.sh, trimmed),
// and running them as children: stand-in scripts play the two tools, so the arguments they get and
// the failures they report are checked without llama.cpp or a model.
#include "llm/llamacpp.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace coproc::bench {
namespace {

// llama-bench -m SmolLM2-135M-Instruct.Q4_1.gguf -t 2 -p 512 -n 128 -o json, fields trimmed.
constexpr const char* kLlamaBenchJson = R"([
  {
    "build_commit": "0c1e570",
    "cpu_info": "AMD EPYC",
    "model_filename": "/models/a [weird] {name}.gguf",
    "n_threads": 2,
    "cpu_strict": false,
    "n_prompt": 512,
    "n_gen": 0,
    "avg_ts": 342.909887,
    "stddev_ts": 2.390080,
    "samples_ns": [ 1490040403, 1511127188 ],
    "samples_ts": [ 343.615, 338.82, 342.951, 344.455, 344.708 ]
  },
  {
    "build_commit": "0c1e570",
    "n_prompt": 0,
    "n_gen": 128,
    "avg_ts": 149.943887,
    "samples_ts": [ 149.575, 149.922, 150.221, 149.735, 150.266 ]
  }
]
)";

// llama-batched-bench ... -npp 128 -ntg 128 -npl 1,4,16 --output-format jsonl, fields trimmed,
// with a stray non-JSON line as a log line would be.
constexpr const char* kBatchedJsonl =
    R"({"n_kv_max": 8192, "pp": 128, "tg": 128, "pl": 1, "speed_pp": 354.520569, "speed_tg": 146.201843, "speed": 207.027130}
main: some log line
{"n_kv_max": 8192, "pp": 128, "tg": 128, "pl": 4, "speed_pp": 367.156433, "speed_tg": 200.511551, "speed": 259.373810}
{"n_kv_max": 8192, "pp": 128, "tg": 128, "pl": 16, "speed_pp": 354.944458, "speed_tg": 256.368256, "speed": 297.708496}
)";

TEST(LlamaBenchJson, shouldReadPromptAndDecodeRatesWithTheirBestSample) {
  auto bench = parse_llama_bench_json(kLlamaBenchJson, 512, 128);
  ASSERT_TRUE(bench.ok()) << bench.error().message;
  EXPECT_DOUBLE_EQ(bench->prompt.mean_tokens_per_s, 342.909887);
  EXPECT_DOUBLE_EQ(bench->prompt.best_tokens_per_s, 344.708);
  EXPECT_DOUBLE_EQ(bench->decode.mean_tokens_per_s, 149.943887);
  EXPECT_DOUBLE_EQ(bench->decode.best_tokens_per_s, 150.266);
  EXPECT_EQ(bench->build_commit, "0c1e570");
}

TEST(LlamaBenchJson, shouldRefuseOutputWithoutTheRequestedTest) {
  auto bench = parse_llama_bench_json(kLlamaBenchJson, 256, 128);
  ASSERT_FALSE(bench.ok());
  EXPECT_NE(bench.error().message.find("pp256"), std::string::npos) << bench.error().message;
}

TEST(LlamaBenchJson, shouldRefuseTextThatIsNotItsJson) {
  for (const char* text : {"pp512 | 342.9 t/s", R"([{"n_prompt": 512, "n_gen": 0)",
                           R"([{"n_prompt": {"x": 1}}])", R"([{"n_prompt": 512, "n_gen": 0}])"}) {
    auto bench = parse_llama_bench_json(text, 512, 128);
    EXPECT_FALSE(bench.ok()) << text;
  }
}

TEST(BatchedBenchJsonl, shouldReadAggregateDecodeRatePerSequenceCount) {
  auto cases = parse_batched_bench_jsonl(kBatchedJsonl);
  ASSERT_TRUE(cases.ok()) << cases.error().message;
  ASSERT_EQ(cases->size(), 3u);
  EXPECT_EQ((*cases)[0].sequences, 1);
  EXPECT_DOUBLE_EQ((*cases)[0].decode_tokens_per_s, 146.201843);
  EXPECT_EQ((*cases)[2].sequences, 16);
  EXPECT_DOUBLE_EQ((*cases)[2].decode_tokens_per_s, 256.368256);
  EXPECT_DOUBLE_EQ((*cases)[2].prompt_tokens_per_s, 354.944458);
}

TEST(BatchedBenchJsonl, shouldRefuseTheMarkdownTable) {
  auto cases = parse_batched_bench_jsonl("|    PP |     TG |    B |\n|-------|\n");
  EXPECT_FALSE(cases.ok());
}

// A temporary bin/ folder with stand-in llama-bench and llama-batched-bench scripts.
class FakeLlamaCpp : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/coproc_llamacpp_test_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  // A script that records its arguments in <name>.args, prints `out` and exits with `status`.
  void write_tool(const std::string& name, const std::string& out, int status = 0,
                  const std::string& err = "") {
    const std::string path = dir_ + "/" + name;
    std::ofstream f(path);
    f << "#!/bin/sh\necho \"$@\" > '" << path << ".args'\ncat <<'EOF_OUT'\n"
      << out << "EOF_OUT\necho '" << err << "' >&2\nexit " << status << "\n";
    f.close();
    ASSERT_EQ(::chmod(path.c_str(), 0755), 0);
  }

  std::string args_of(const std::string& name) {
    std::ifstream f(dir_ + "/" + name + ".args");
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }

  LlamaCppBenchOptions options() {
    LlamaCppBenchOptions o;
    o.bin_dir = dir_;
    o.model_path = "/models/m.gguf";
    o.threads = 2;
    return o;
  }

  std::string dir_;
};

TEST_F(FakeLlamaCpp, shouldRunBothToolsWithTheSameModelAndThreads) {
  write_tool("llama-bench", kLlamaBenchJson);
  write_tool("llama-batched-bench", kBatchedJsonl);
  auto bench = run_llamacpp_bench(options());
  ASSERT_TRUE(bench.ok()) << bench.error().message;
  EXPECT_EQ(args_of("llama-bench"), "-m /models/m.gguf -t 2 -p 512 -n 128 -r 5 -o json\n");
  // 16 sequences of 128 + 128 tokens need a 4096-token context.
  EXPECT_EQ(args_of("llama-batched-bench"),
            "-m /models/m.gguf -t 2 -c 4096 -b 2048 -ub 512 -npp 128 -ntg 128 -npl 1,4,16 "
            "--output-format jsonl\n");
  ASSERT_EQ(bench->batched.size(), 3u);
  EXPECT_EQ(bench->batched[1].sequences, 4);
  EXPECT_DOUBLE_EQ(bench->batched[1].decode_tokens_per_s, 200.511551);
  ASSERT_EQ(bench->commands.size(), 2u);
  EXPECT_EQ(bench->commands[0], dir_ + "/llama-bench -m /models/m.gguf -t 2 -p 512 -n 128 -r 5 -o json");
}

TEST_F(FakeLlamaCpp, shouldReportMissingBinariesAsNotFound) {
  write_tool("llama-bench", kLlamaBenchJson);
  auto bench = run_llamacpp_bench(options());
  ASSERT_FALSE(bench.ok());
  EXPECT_EQ(bench.error().code, ErrorCode::kNotFound);
  EXPECT_NE(bench.error().message.find("llama-batched-bench"), std::string::npos);
  EXPECT_NE(bench.error().message.find("build_llamacpp.sh"), std::string::npos);
}

TEST_F(FakeLlamaCpp, shouldReportAFailedRunWithItsCommandAndStderr) {
  write_tool("llama-bench", "", 1, "error: failed to load model");
  write_tool("llama-batched-bench", kBatchedJsonl);
  auto bench = run_llamacpp_bench(options());
  ASSERT_FALSE(bench.ok());
  EXPECT_EQ(bench.error().code, ErrorCode::kInternal);
  EXPECT_NE(bench.error().message.find("exited with status 1"), std::string::npos);
  EXPECT_NE(bench.error().message.find("failed to load model"), std::string::npos);
  EXPECT_NE(bench.error().message.find("-m /models/m.gguf"), std::string::npos);
}

TEST_F(FakeLlamaCpp, shouldRefuseABatchedRunThatLacksARequestedSequenceCount) {
  write_tool("llama-bench", kLlamaBenchJson);
  write_tool("llama-batched-bench", kBatchedJsonl);
  LlamaCppBenchOptions o = options();
  o.sequences = {1, 8};
  auto bench = run_llamacpp_bench(o);
  ASSERT_FALSE(bench.ok());
  EXPECT_NE(bench.error().message.find("no case with 8 sequences"), std::string::npos);
}

}  // namespace
}  // namespace coproc::bench
