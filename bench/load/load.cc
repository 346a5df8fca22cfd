#include "load/load.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "coproc.h"
#include "transport/transports.h"

namespace coproc::bench {

namespace {

// Time for every client to connect and allocate before the common start.
constexpr int64_t kSetupAllowanceNs = 500'000'000;
// Longest single wait of a client loop, so it notices the end of the run.
constexpr int64_t kPollSliceNs = 1'000'000;
// Open loop: the window of outstanding requests each client can hold.
constexpr int kOpenLoopWindow = 64;

struct Slot {
  coproc_tensor inputs[4];
  coproc_tensor outputs[4];
  coproc_request* request = nullptr;
  int64_t started_ns = 0;  // submit time (closed) or scheduled arrival (open)
  uint8_t priority = 0;
};

int64_t now_ns() { return static_cast<int64_t>(coproc_now_ns()); }

// One client process: runs the loop and writes its samples to `path`.
int client_main(const LoadOptions& o, int index, int64_t start_ns, const std::string& path) {
  coproc_connect_options copts;
  coproc_connect_options_init(&copts);
  copts.socket_path = o.socket_path.empty() ? nullptr : o.socket_path.c_str();
  copts.spin_ns = 0;  // many clients share few cores: sleep, don't spin
  coproc_client* client = nullptr;
  if (coproc_connect(&copts, &client) != COPROC_OK) return 10;
  coproc_model* model = nullptr;
  if (coproc_model_find(client, o.model_name.c_str(), &model) != COPROC_OK) return 11;
  const size_t n_in = coproc_model_input_count(model), n_out = coproc_model_output_count(model);
  if (n_in > 4 || n_out > 4) return 12;
  const bool open_loop = o.rate_rps > 0;
  const int window = open_loop ? kOpenLoopWindow : o.in_flight;
  std::vector<Slot> slots(static_cast<size_t>(window));
  for (auto& s : slots) {
    if (!alloc_model_tensors(client, model, true, s.inputs, n_in, o.shape) ||
        !alloc_model_tensors(client, model, false, s.outputs, n_out, o.shape)) {
      return 13;
    }
  }
  std::mt19937_64 rng(o.seed * 7919 + static_cast<uint64_t>(index));
  std::discrete_distribution<int> pick_priority(o.priority_mix.begin(), o.priority_mix.end());
  std::exponential_distribution<double> gap_s(open_loop ? o.rate_rps / o.clients : 1.0);

  std::vector<LoadSample> samples;
  uint64_t errors = 0, backlogged = 0;
  const int64_t measure_from = start_ns + o.warmup_ns;
  const int64_t end = measure_from + o.duration_ns;
  while (now_ns() < start_ns) std::this_thread::sleep_for(std::chrono::microseconds(100));

  auto submit = [&](Slot& s, int64_t started) {
    coproc_submit_options so;
    coproc_submit_options_init(&so);
    s.priority = static_cast<uint8_t>(pick_priority(rng));
    so.priority = static_cast<coproc_priority>(s.priority);
    s.started_ns = started;
    if (coproc_submit(client, model, s.inputs, n_in, s.outputs, n_out, &so, &s.request) !=
        COPROC_OK) {
      s.request = nullptr;
      ++errors;
    }
  };
  auto collect = [&](Slot& s) {
    int64_t done = now_ns();
    coproc_status st = coproc_request_status(s.request);
    coproc_timing timing{};
    coproc_request_timing(s.request, &timing);
    if (s.started_ns >= measure_from && done <= end) {
      samples.push_back({done - s.started_ns, timing.queue_ns, timing.exec_ns, timing.batch_size,
                         s.priority, static_cast<uint8_t>(st)});
    }
    if (st != COPROC_OK) ++errors;
    coproc_release(s.request);
    s.request = nullptr;
  };

  double next_arrival = static_cast<double>(now_ns());
  if (!open_loop) {
    for (auto& s : slots) submit(s, now_ns());
  }
  std::vector<coproc_request*> pending;
  while (now_ns() < end) {
    if (open_loop) {
      int64_t now = now_ns();
      while (next_arrival <= static_cast<double>(now)) {
        Slot* free_slot = nullptr;
        for (auto& s : slots) {
          if (!s.request) {
            free_slot = &s;
            break;
          }
        }
        if (free_slot) {
          submit(*free_slot, static_cast<int64_t>(next_arrival));
        } else if (static_cast<int64_t>(next_arrival) >= measure_from) {
          ++backlogged;
        }
        next_arrival += gap_s(rng) * 1e9;
      }
    }
    pending.clear();
    for (auto& s : slots) {
      if (s.request) pending.push_back(s.request);
    }
    int64_t wait = kPollSliceNs;
    if (open_loop)
      wait = std::clamp<int64_t>(static_cast<int64_t>(next_arrival) - now_ns(), 0, kPollSliceNs);
    if (pending.empty()) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
      continue;
    }
    coproc_status ps = coproc_poll(client, pending.data(), pending.size(), wait, nullptr);
    if (ps == COPROC_ERR_DAEMON_GONE) return 14;
    for (auto& s : slots) {
      if (s.request && coproc_request_status(s.request) != COPROC_ERR_IN_FLIGHT) {
        collect(s);
        if (!open_loop && now_ns() < end) submit(s, now_ns());
      }
    }
  }
  // Drain what is still outstanding (not recorded) so the daemon is idle.
  for (auto& s : slots) {
    if (s.request && coproc_wait(s.request, 5'000'000'000) != COPROC_ERR_TIMEOUT) {
      coproc_release(s.request);
    }
  }
  std::ofstream out(path, std::ios::binary);
  uint64_t header[3] = {samples.size(), errors, backlogged};
  out.write(reinterpret_cast<const char*>(header), sizeof(header));
  out.write(reinterpret_cast<const char*>(samples.data()),
            static_cast<std::streamsize>(samples.size() * sizeof(LoadSample)));
  coproc_disconnect(client);
  return out ? 0 : 15;
}

}  // namespace

LoadResult run_load(const LoadOptions& o) {
  LoadResult result;
  char tmpl[] = "/tmp/coproc-load-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    result.error = "mkdtemp failed";
    return result;
  }
  const std::string dir = tmpl;
  const int64_t start_ns = now_ns() + kSetupAllowanceNs;
  std::vector<pid_t> children;
  for (int i = 0; i < o.clients; ++i) {
    std::string path = dir + "/client-" + std::to_string(i) + ".bin";
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(client_main(o, i, start_ns, path));
    children.push_back(pid);
  }
  if (o.heavy_rows > 0) {
    // The heavy neighbour: client number `clients`, one big request in flight, closed loop.
    LoadOptions heavy = o;
    heavy.in_flight = 1;
    heavy.rate_rps = 0;
    heavy.shape.batch = o.heavy_rows;
    heavy.priority_mix = {};
    heavy.priority_mix[o.heavy_priority] = 1;
    const std::string path = dir + "/client-" + std::to_string(o.clients) + ".bin";
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(client_main(heavy, o.clients, start_ns, path));
    children.push_back(pid);
  }
  for (int i = 0; i < static_cast<int>(children.size()); ++i) {
    const bool heavy = i == o.clients;
    int status = 0;
    ::waitpid(children[static_cast<size_t>(i)], &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      result.error = (heavy ? "the heavy neighbour" : "client " + std::to_string(i)) +
                     " failed (exit " +
                     std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")";
      continue;
    }
    std::ifstream in(dir + "/client-" + std::to_string(i) + ".bin", std::ios::binary);
    uint64_t header[3] = {};
    in.read(reinterpret_cast<char*>(header), sizeof(header));
    std::vector<LoadSample>& samples = heavy ? result.heavy_samples : result.samples;
    size_t old = samples.size();
    samples.resize(old + header[0]);
    in.read(reinterpret_cast<char*>(samples.data() + old),
            static_cast<std::streamsize>(header[0] * sizeof(LoadSample)));
    result.errors += header[1];
    result.backlogged += header[2];
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  result.measured_ns = o.duration_ns;
  return result;
}

}  // namespace coproc::bench
