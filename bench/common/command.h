// What every coproc-bench subcommand shares: how it is registered and run, and
// how it names a model.
//
// Each folder adds its subcommand with add_<name>_command(app): it declares the
// flags on a CLI11 subcommand of `app` and returns a Command whose run() does
// the work once that subcommand was parsed. The flags' storage lives in run()'s
// closure, so each subcommand owns its settings and main.cc only wires them.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace coproc::bench {

struct Command {
  CLI::App* app;             // the subcommand
  std::function<int()> run;  // the exit code
};

struct ModelChoice {
  std::string name;
  std::string path;
};

// A bundled model's name (build/models/NAME.onnx next to build/bin) or a path.
bool resolve_model(const std::string& arg, ModelChoice* out, std::string* error);

}  // namespace coproc::bench
