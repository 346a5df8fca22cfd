// coproc-bench: latency of coproc against the baselines that matter, each
// measured in the same run (ratios, not lone absolute numbers).
//   coproc-bench latency --socket PATH --model NAME    ping-pong against a running daemon
//   coproc-bench compare --model noop|mlp|PATH [--json] every transport, private daemon
//   coproc-bench load --model mlp --clients 8 [--in-flight K | --rate RPS] [--mix ...] [--json]
//   coproc-bench ort --model FILE [--batches 1,32 --seq 128 --threads 1] [--json]
//                                       coproc's runtime vs ONNX Runtime, latency per batch size
//   coproc-bench ort --model FILE --processes 16 [--json]
//                                       N processes: one coprocd vs ONNX Runtime in each
//   coproc-bench devices --model FILE [--gemm N] [--json]
//                                       the OpenCL device against the CPU
//   coproc-bench llm --model FILE.gguf [--llamacpp DIR] [--json]
//                                       the LLM engine against llama.cpp: pp512, tg128, decodeN
// Each folder registers its own subcommand (common/command.h); this file only wires them.
#include <CLI/CLI.hpp>
#include <vector>

#include "common/command.h"
#include "devices/devices_command.h"
#include "llm/llm_command.h"
#include "load/load_command.h"
#include "ort/ort_command.h"
#include "transport/transport_commands.h"

int main(int argc, char** argv) {
  using namespace coproc::bench;
  CLI::App app{"coproc-bench: coproc latency against its baselines"};
  app.require_subcommand(1);
  // In this order in --help.
  const std::vector<Command> commands = {add_compare_command(app), add_latency_command(app),
                                         add_load_command(app), add_ort_command(app),
                                         add_devices_command(app), add_llm_command(app)};
  CLI11_PARSE(app, argc, argv);
  for (const Command& command : commands) {
    if (command.app->parsed()) return command.run();
  }
  return 2;  // not reached: require_subcommand(1) makes the parse fail without one
}
