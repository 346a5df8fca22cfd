#include "ort/ort_process.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace coproc::bench {

namespace {

constexpr std::size_t kReadChunkBytes = 1 << 16;

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  for (;;) {
    std::size_t at = line.find(sep, start);
    fields.push_back(line.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return fields;
    start = at + 1;
  }
}

std::string join_dims(const std::vector<int64_t>& dims) {
  std::string text;
  for (int64_t d : dims) {
    if (!text.empty()) text += ',';
    text += std::to_string(d);
  }
  return text;
}

bool parse_int(const std::string& text, int64_t* out) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

}  // namespace

OrtProcess::OrtProcess(const std::string& python, const std::string& worker_script) {
  // Everything the child needs is built before fork(): between fork and exec it may only make
  // async-signal-safe calls (this process may have threads).
  std::vector<std::string> env_strings = {"OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1"};
  for (char** e = environ; *e; ++e) {
    std::string_view var(*e);
    if (!var.starts_with("OPENBLAS_NUM_THREADS=") && !var.starts_with("OMP_NUM_THREADS=")) {
      env_strings.emplace_back(var);
    }
  }
  std::vector<char*> envp;
  for (auto& v : env_strings) envp.push_back(v.data());
  envp.push_back(nullptr);
  std::string py = python, script = worker_script;
  char* argv[] = {py.data(), script.data(), nullptr};
  static constexpr char kExecFailed[] = "coproc-bench: cannot exec the Python for ort_worker\n";

  int down[2], up[2];
  if (::pipe2(down, O_CLOEXEC) != 0 || ::pipe2(up, O_CLOEXEC) != 0) {
    error_ = std::string("pipe: ") + std::strerror(errno);
    return;
  }
  pid_ = ::fork();
  if (pid_ == 0) {
    // dup2 clears close-on-exec on 0 and 1; every other pipe (ours, other workers') closes at exec,
    // so each worker sees end of input as soon as its own parent end closes.
    ::dup2(down[0], STDIN_FILENO);
    ::dup2(up[1], STDOUT_FILENO);
    ::execvpe(argv[0], argv, envp.data());
    [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, kExecFailed, sizeof(kExecFailed) - 1);
    ::_exit(127);
  }
  ::close(down[0]);
  ::close(up[1]);
  to_child_ = down[1];
  from_child_ = up[0];
  if (pid_ < 0) error_ = std::string("fork: ") + std::strerror(errno);
}

OrtProcess::~OrtProcess() {
  if (to_child_ >= 0) {
    send({"quit"});
    ::close(to_child_);
  }
  if (from_child_ >= 0) ::close(from_child_);
  if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
}

bool OrtProcess::fail(std::string message) {
  if (error_.empty()) error_ = std::move(message);
  return false;
}

bool OrtProcess::send(std::initializer_list<std::string> fields) {
  if (!ok()) return false;
  std::string line;
  for (const auto& f : fields) {
    if (!line.empty()) line += '\t';
    line += f;
  }
  line += '\n';
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(to_child_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("ort_worker: write: " + std::string(std::strerror(errno)));
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return true;
}

std::optional<std::vector<std::string>> OrtProcess::receive() {
  if (!ok()) return std::nullopt;
  std::size_t newline;
  while ((newline = buffered_.find('\n')) == std::string::npos) {
    char chunk[kReadChunkBytes];
    ssize_t n = ::read(from_child_, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      fail("ort_worker exited (see its messages above)");
      return std::nullopt;
    }
    buffered_.append(chunk, static_cast<std::size_t>(n));
  }
  auto fields = split(buffered_.substr(0, newline), '\t');
  buffered_.erase(0, newline + 1);
  if (fields[0] != "ok") {
    fail("ort_worker: " + (fields.size() > 1 ? fields[1] : fields[0]));
    return std::nullopt;
  }
  fields.erase(fields.begin());
  return fields;
}

std::optional<std::vector<std::string>> OrtProcess::call(
    std::initializer_list<std::string> fields) {
  if (!send(fields)) return std::nullopt;
  return receive();
}

std::optional<std::vector<int64_t>> OrtProcess::parse_samples(
    const std::optional<std::vector<std::string>>& reply) {
  if (!reply) return std::nullopt;
  int64_t count = 0;
  if (reply->empty() || !parse_int((*reply)[0], &count)) {
    fail("ort_worker: a sample reply without a count");
    return std::nullopt;
  }
  std::vector<int64_t> samples;
  samples.reserve(static_cast<std::size_t>(count));
  if (count > 0 && reply->size() == 2) {
    for (const auto& s : split((*reply)[1], ' ')) {
      int64_t v = 0;
      if (!parse_int(s, &v)) break;
      samples.push_back(v);
    }
  }
  if (static_cast<int64_t>(samples.size()) != count) {
    fail("ort_worker: sample count does not match the samples sent");
    return std::nullopt;
  }
  return samples;
}

bool OrtProcess::load(const std::string& model_path, int threads, std::string* version) {
  auto reply = call({"load", model_path, std::to_string(threads)});
  if (!reply) return false;
  if (version) *version = reply->empty() ? "" : (*reply)[0];
  return true;
}

bool OrtProcess::set_input(const std::string& name, const std::string& dtype,
                           const std::vector<int64_t>& dims, const std::string& path) {
  return call({"input", name, dtype, join_dims(dims), path}).has_value();
}

std::optional<std::vector<OrtOutput>> OrtProcess::write_outputs(const std::string& dir) {
  auto reply = call({"outputs", dir});
  if (!reply) return std::nullopt;
  std::vector<OrtOutput> outputs;
  for (const auto& field : *reply) {
    std::size_t colon = field.find(':');
    if (colon == std::string::npos) {
      fail("ort_worker: bad output description '" + field + "'");
      return std::nullopt;
    }
    OrtOutput out{field.substr(0, colon), {}};
    std::string dims = field.substr(colon + 1);
    if (!dims.empty()) {
      for (const auto& d : split(dims, ',')) {
        int64_t v = 0;
        if (!parse_int(d, &v)) {
          fail("ort_worker: bad output dims '" + field + "'");
          return std::nullopt;
        }
        out.dims.push_back(v);
      }
    }
    outputs.push_back(std::move(out));
  }
  return outputs;
}

std::optional<std::vector<int64_t>> OrtProcess::run(int64_t iterations, int64_t max_ns) {
  return parse_samples(call({"run", std::to_string(iterations), std::to_string(max_ns)}));
}

std::optional<OrtCallOverhead> OrtProcess::overhead(int64_t iterations) {
  auto reply = call({"overhead", std::to_string(iterations)});
  if (!reply) return std::nullopt;
  OrtCallOverhead o;
  if (reply->size() != 3 || !parse_int((*reply)[0], &o.identity_p50_ns) ||
      !parse_int((*reply)[1], &o.identity_p99_ns) || !parse_int((*reply)[2], &o.timer_p50_ns)) {
    fail("ort_worker: bad overhead reply");
    return std::nullopt;
  }
  return o;
}

bool OrtProcess::send_loop(int64_t start_ns, int64_t warmup_ns, int64_t duration_ns) {
  return send(
      {"loop", std::to_string(start_ns), std::to_string(warmup_ns), std::to_string(duration_ns)});
}

std::optional<std::vector<int64_t>> OrtProcess::receive_loop() { return parse_samples(receive()); }

}  // namespace coproc::bench
