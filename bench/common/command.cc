#include "common/command.h"

#include <filesystem>

#include "common/private_daemon.h"

namespace coproc::bench {

bool resolve_model(const std::string& arg, ModelChoice* out, std::string* error) {
  namespace fs = std::filesystem;
  fs::path bundled = fs::path(executable_dir()) / ".." / "models" / (arg + ".onnx");
  if (arg.find('/') == std::string::npos && fs::exists(bundled)) {
    *out = {arg, fs::canonical(bundled).string()};
    return true;
  }
  if (fs::exists(arg)) {
    *out = {fs::path(arg).stem().string(), fs::canonical(arg).string()};
    return true;
  }
  *error = "no bundled model '" + arg + "' and no such file (bundled: noop, mlp)";
  return false;
}

}  // namespace coproc::bench
