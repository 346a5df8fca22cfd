#include "llm/llamacpp.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

extern char** environ;

namespace coproc::bench {

namespace {

constexpr std::size_t kStderrTailBytes = 2000;
constexpr std::size_t kReadChunkBytes = 1 << 16;
// llama-batched-bench's batch sizes: a logical batch that takes a whole 16 x 128-token prefill in
// a few llama_decode calls, and llama.cpp's default physical batch.
constexpr int kBatchedBenchBatch = 2048;
constexpr int kBatchedBenchUbatch = 512;

// ---- The JSON that llama.cpp's benchmarks print -------------------------------------------------
//
// Both print flat objects: scalar values, and arrays of numbers (samples) that we do not need.
// FlatObject keeps each scalar as its text (strings unescaped); arrays are parsed as a whole
// value and kept as their raw text. Nested objects are refused: neither tool prints them, so one
// means the output is not what this parser was written for.
using FlatObject = std::map<std::string, std::string, std::less<>>;

class FlatJson {
 public:
  explicit FlatJson(std::string_view text) : s_(text) {}

  // Objects at the top level: one object, an array of them, or several one after another (JSON
  // lines).
  Result<std::vector<FlatObject>> objects() {
    std::vector<FlatObject> out;
    for (;;) {
      skip_space();
      if (i_ == s_.size()) return out;
      const char c = s_[i_];
      if (c == '[' || c == ']' || c == ',') {
        ++i_;
      } else if (c == '{') {
        auto object = parse_object();
        if (!object.ok()) return object.error();
        out.push_back(std::move(*object));
      } else {
        return fail("expected an object");
      }
    }
  }

 private:
  Error fail(const std::string& what) const {
    return make_error(ErrorCode::kInternal,
                      "unparsable benchmark JSON at byte " + std::to_string(i_) + ": " + what);
  }

  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) {
      ++i_;
    }
  }

  Result<FlatObject> parse_object() {
    FlatObject object;
    ++i_;  // '{'
    skip_space();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return object;
    }
    for (;;) {
      skip_space();
      auto key = parse_string();
      if (!key.ok()) return key.error();
      skip_space();
      if (i_ == s_.size() || s_[i_] != ':') return fail("expected ':'");
      ++i_;
      skip_space();
      auto value = parse_value();
      if (!value.ok()) return value.error();
      object[std::move(*key)] = std::move(*value);
      skip_space();
      if (i_ == s_.size()) return fail("unterminated object");
      const char next = s_[i_++];
      if (next == '}') return object;
      if (next != ',') return fail("expected ',' or '}'");
    }
  }

  Result<std::string> parse_value() {
    if (i_ == s_.size()) return fail("missing value");
    if (s_[i_] == '"') return parse_string();
    if (s_[i_] == '{') return fail("nested object");
    const std::size_t start = i_;
    if (s_[i_] == '[') {
      // Skipped whole, strings included, so a ']' inside one does not end it.
      int depth = 0;
      do {
        if (s_[i_] == '"') {
          auto skipped = parse_string();
          if (!skipped.ok()) return skipped.error();
          continue;
        }
        if (s_[i_] == '{') return fail("nested object");
        depth += s_[i_] == '[' ? 1 : s_[i_] == ']' ? -1 : 0;
        ++i_;
      } while (depth > 0 && i_ < s_.size());
      if (depth > 0) return fail("unterminated array");
      return std::string(s_.substr(start, i_ - start));
    }
    while (i_ < s_.size() && std::strchr(",}] \n\r\t", s_[i_]) == nullptr) ++i_;
    if (i_ == start) return fail("empty value");
    return std::string(s_.substr(start, i_ - start));
  }

  // A string's content with its escapes resolved (\uXXXX kept as written: only keys and short
  // labels are read, and none of them needs it).
  Result<std::string> parse_string() {
    if (i_ == s_.size() || s_[i_] != '"') return fail("expected a string");
    std::string out;
    for (++i_; i_ < s_.size(); ++i_) {
      const char c = s_[i_];
      if (c == '"') {
        ++i_;
        return out;
      }
      if (c == '\\' && i_ + 1 < s_.size()) {
        switch (const char e = s_[++i_]) {
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          case 'r': out += '\r'; break;
          case 'u': out += "\\u"; break;  // its four hex digits follow as they are
          default: out += e;  // \" \\ \/ stand for themselves
        }
      } else {
        out += c;
      }
    }
    return fail("unterminated string");
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

Result<double> number_field(const FlatObject& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end()) {
    return make_error(ErrorCode::kInternal,
                      "benchmark output has no \"" + std::string(key) + "\"");
  }
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(it->second.c_str(), &end);
  if (errno != 0 || end == it->second.c_str() || *end != '\0') {
    return make_error(ErrorCode::kInternal, "benchmark output's \"" + std::string(key) +
                                                "\" is not a number: " + it->second);
  }
  return value;
}

// The largest number of a JSON array of numbers ("samples_ts"); 0 for none.
double max_of_array(const std::string& array) {
  double best = 0;
  const char* p = array.c_str();
  while (*p != '\0') {
    if (*p == '[' || *p == ',' || *p == ' ' || *p == ']' || *p == '\n') {
      ++p;
      continue;
    }
    char* end = nullptr;
    const double v = std::strtod(p, &end);
    if (end == p) return best;  // not a number: give up on the samples, the mean still counts
    best = std::max(best, v);
    p = end;
  }
  return best;
}

// ---- Children ---------------------------------------------------------------------------------

struct Captured {
  std::string out;
  std::string err;
  int status = 0;  // waitpid's status
};

std::string command_line(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& a : argv) {
    if (!line.empty()) line += ' ';
    line += a;
  }
  return line;
}

std::string tail(const std::string& text) {
  return text.size() <= kStderrTailBytes ? text : "..." + text.substr(text.size() - kStderrTailBytes);
}

// Runs argv[0] (a path) with our environment and collects its stdout and stderr until it exits.
// Both pipes are drained together so that a child filling one cannot block on it.
Result<Captured> capture(const std::vector<std::string>& argv) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    return make_error(ErrorCode::kInternal, std::string("pipe: ") + std::strerror(errno));
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return make_error(ErrorCode::kInternal, std::string("pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return make_error(ErrorCode::kInternal, "cannot run " + argv[0] + ": " + std::strerror(rc));
  }

  Captured result;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int k = 0; k < 2; ++k) {
      if (fds[k].fd < 0 || fds[k].revents == 0) continue;
      char chunk[kReadChunkBytes];
      const ssize_t n = ::read(fds[k].fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fds[k].fd);
        fds[k].fd = -1;  // poll ignores negative descriptors
        --open_fds;
        continue;
      }
      sinks[k]->append(chunk, static_cast<std::size_t>(n));
    }
  }
  for (const auto& fd : fds) {
    if (fd.fd >= 0) ::close(fd.fd);
  }
  while (::waitpid(pid, &result.status, 0) < 0 && errno == EINTR) {
  }
  return result;
}

// Runs one benchmark and returns its stdout, or why it failed (command line and stderr's tail).
Result<std::string> run_tool(const std::vector<std::string>& argv) {
  auto captured = capture(argv);
  if (!captured.ok()) return captured.error();
  const int status = captured->status;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string how = WIFEXITED(status)
                                ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                : "was killed by signal " + std::to_string(WTERMSIG(status));
    return make_error(ErrorCode::kInternal,
                      command_line(argv) + " " + how + ":\n" + tail(captured->err));
  }
  return std::move(captured->out);
}

Result<std::string> find_tool(const std::string& bin_dir, const char* name) {
  std::string path = bin_dir + "/" + name;
  if (::access(path.c_str(), X_OK) != 0) {
    return make_error(ErrorCode::kNotFound,
                      "no executable " + path + " (tools/llm/build_llamacpp.sh builds llama.cpp)");
  }
  return path;
}

Error with_command(const Error& e, const std::vector<std::string>& argv) {
  return make_error(e.code, e.message + " (from " + command_line(argv) + ")");
}

}  // namespace

Result<LlamaCppBench> parse_llama_bench_json(std::string_view json, int prompt_tokens,
                                             int decode_tokens) {
  auto objects = FlatJson(json).objects();
  if (!objects.ok()) return objects.error();
  LlamaCppBench bench;
  bool have_pp = false, have_tg = false;
  for (const FlatObject& o : *objects) {
    auto n_prompt = number_field(o, "n_prompt");
    auto n_gen = number_field(o, "n_gen");
    auto mean = number_field(o, "avg_ts");
    if (!n_prompt.ok()) return n_prompt.error();
    if (!n_gen.ok()) return n_gen.error();
    if (!mean.ok()) return mean.error();
    auto samples = o.find("samples_ts");
    const LlamaCppRate rate{*mean, samples == o.end() ? *mean : max_of_array(samples->second)};
    if (*n_prompt == prompt_tokens && *n_gen == 0) {
      bench.prompt = rate;
      have_pp = true;
    } else if (*n_prompt == 0 && *n_gen == decode_tokens) {
      bench.decode = rate;
      have_tg = true;
    }
    if (auto commit = o.find("build_commit"); commit != o.end()) bench.build_commit = commit->second;
  }
  if (!have_pp || !have_tg) {
    return make_error(ErrorCode::kInternal,
                      "llama-bench's output has no " +
                          std::string(have_pp ? "" : "pp" + std::to_string(prompt_tokens) + " ") +
                          (have_tg ? "" : "tg" + std::to_string(decode_tokens) + " ") + "entry");
  }
  return bench;
}

Result<std::vector<LlamaCppBatched>> parse_batched_bench_jsonl(std::string_view jsonl) {
  std::vector<LlamaCppBatched> cases;
  std::size_t start = 0;
  while (start < jsonl.size()) {
    std::size_t end = jsonl.find('\n', start);
    if (end == std::string_view::npos) end = jsonl.size();
    std::string_view line = jsonl.substr(start, end - start);
    start = end + 1;
    const std::size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || line[first] != '{') continue;
    auto objects = FlatJson(line).objects();
    if (!objects.ok()) return objects.error();
    for (const FlatObject& o : *objects) {
      auto pl = number_field(o, "pl");
      auto tg = number_field(o, "speed_tg");
      auto pp = number_field(o, "speed_pp");
      if (!pl.ok()) return pl.error();
      if (!tg.ok()) return tg.error();
      if (!pp.ok()) return pp.error();
      cases.push_back({static_cast<int>(*pl), *tg, *pp});
    }
  }
  if (cases.empty()) {
    return make_error(ErrorCode::kInternal, "llama-batched-bench printed no JSON lines");
  }
  return cases;
}

Result<LlamaCppBench> run_llamacpp_bench(const LlamaCppBenchOptions& options) {
  auto bench_path = find_tool(options.bin_dir, "llama-bench");
  if (!bench_path.ok()) return bench_path.error();
  auto batched_path = find_tool(options.bin_dir, "llama-batched-bench");
  if (!batched_path.ok()) return batched_path.error();
  if (options.sequences.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "llama.cpp bench: no sequence counts");
  }
  const int threads = options.threads > 0
                          ? options.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const std::string t = std::to_string(threads);

  const std::vector<std::string> bench_argv = {
      *bench_path, "-m", options.model_path, "-t", t, "-p", std::to_string(options.prompt_tokens),
      "-n", std::to_string(options.decode_tokens), "-r", std::to_string(options.repetitions),
      "-o", "json"};
  auto bench_out = run_tool(bench_argv);
  if (!bench_out.ok()) return bench_out.error();
  auto result = parse_llama_bench_json(*bench_out, options.prompt_tokens, options.decode_tokens);
  if (!result.ok()) return with_command(result.error(), bench_argv);
  result->commands.push_back(command_line(bench_argv));

  // The context holds every sequence's prompt and generated tokens at the largest count.
  const int max_sequences = *std::max_element(options.sequences.begin(), options.sequences.end());
  const int context = max_sequences * (options.batched_prompt_tokens + options.decode_tokens);
  std::string npl;
  for (int n : options.sequences) {
    if (!npl.empty()) npl += ',';
    npl += std::to_string(n);
  }
  const std::vector<std::string> batched_argv = {
      *batched_path, "-m", options.model_path, "-t", t, "-c", std::to_string(context),
      "-b", std::to_string(kBatchedBenchBatch), "-ub", std::to_string(kBatchedBenchUbatch),
      "-npp", std::to_string(options.batched_prompt_tokens),
      "-ntg", std::to_string(options.decode_tokens), "-npl", npl, "--output-format", "jsonl"};
  auto batched_out = run_tool(batched_argv);
  if (!batched_out.ok()) return batched_out.error();
  auto batched = parse_batched_bench_jsonl(*batched_out);
  if (!batched.ok()) return with_command(batched.error(), batched_argv);
  for (int n : options.sequences) {
    auto it = std::find_if(batched->begin(), batched->end(),
                           [n](const LlamaCppBatched& c) { return c.sequences == n; });
    if (it == batched->end()) {
      return make_error(ErrorCode::kInternal, "llama-batched-bench reported no case with " +
                                                  std::to_string(n) + " sequences (from " +
                                                  command_line(batched_argv) + ")");
    }
    result->batched.push_back(*it);
  }
  result->commands.push_back(command_line(batched_argv));
  return result;
}

}  // namespace coproc::bench
