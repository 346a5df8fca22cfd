#include "soak_watch.h"

#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <string_view>

namespace coproc::soak {

namespace {

// "VmRSS:    26460 kB" -> 26460 for key "VmRSS:".
int64_t status_kb(std::string_view line, std::string_view key) {
  if (line.substr(0, key.size()) != key) return -1;
  return std::strtoll(std::string(line.substr(key.size())).c_str(), nullptr, 10);
}

int64_t count_entries(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return -1;
  int64_t n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;
}

int64_t count_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) return -1;
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

}  // namespace

uint64_t ModelBooks::completed_total() const {
  uint64_t sum = 0;
  for (uint64_t c : completed) sum += c;
  return sum;
}

ModelBooks ModelBooks::since(const ModelBooks& e) const {
  ModelBooks d = *this;
  d.accepted -= e.accepted;
  d.rejected_queue_full -= e.rejected_queue_full;
  d.rejected_invalid -= e.rejected_invalid;
  for (uint32_t s = 0; s < wire::kStatusCount; ++s) d.completed[s] -= e.completed[s];
  d.expired -= e.expired;
  d.cancelled -= e.cancelled;
  d.dropped_client_gone -= e.dropped_client_gone;
  return d;  // queued is a gauge: the later reading's
}

bool DaemonWatch::open(const std::string& socket_path) {
  if (!view_.open(socket_path)) {
    error_ = view_.error();
    return false;
  }
  pid_ = view_.header().daemon_pid;
  return true;
}

std::vector<ModelBooks> DaemonWatch::books() const {
  std::vector<ModelBooks> all;
  if (pid_ < 0) return all;
  // relaxed: each counter is one atomic (never torn); see ModelBooks.
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  for (std::size_t m = 0; m < view_.models().size(); ++m) {
    ModelBooks b;
    b.name = view_.models()[m].name;
    for (uint32_t k = 0; k < view_.blocks_per_model(); ++k) {
      const auto& s = view_.block(m, k);
      b.accepted += get(s.accepted);
      b.rejected_queue_full += get(s.rejected_queue_full);
      b.rejected_invalid += get(s.rejected_invalid);
      for (uint32_t st = 0; st < wire::kStatusCount; ++st) b.completed[st] += get(s.completed[st]);
      b.expired += get(s.expired);
      b.cancelled += get(s.cancelled);
      b.dropped_client_gone += get(s.dropped_client_gone);
      for (const auto& q : s.queue_depth) b.queued += get(q);
    }
    all.push_back(std::move(b));
  }
  return all;
}

ProcSample DaemonWatch::sample() const {
  ProcSample p;
  const std::string dir = "/proc/" + std::to_string(pid_);
  std::ifstream status(dir + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("State:", 0) == 0) {
      // "State:\tS (sleeping)". Z (zombie) and X (dead): the daemon is gone
      // even though /proc still lists it.
      const std::size_t at = line.find_first_not_of(" \t", sizeof("State:") - 1);
      p.alive = at != std::string::npos && line[at] != 'Z' && line[at] != 'X';
    }
    if (int64_t v = status_kb(line, "VmRSS:"); v >= 0) p.rss_kb = v;
    if (int64_t v = status_kb(line, "RssAnon:"); v >= 0) p.rss_anon_kb = v;
    if (int64_t v = status_kb(line, "RssFile:"); v >= 0) p.rss_file_kb = v;
    if (int64_t v = status_kb(line, "RssShmem:"); v >= 0) p.rss_shmem_kb = v;
  }
  p.fds = count_entries(dir + "/fd");
  p.maps = count_lines(dir + "/maps");
  return p;
}

}  // namespace coproc::soak
