#include "transport/transports.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>

#include "common/cpu_session.h"
#include "coproc.h"
#include "coproc/coproc_generated.h"
#include "coproc/kernels/cpu.h"
#include "coproc/ring/wait.h"
#include "coproc/runtime/model.h"

namespace coproc::bench {

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

bool read_full(int fd, char* p, std::size_t n) {
  while (n) {
    ssize_t r = ::read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

bool write_full(int fd, const char* p, std::size_t n) {
  while (n) {
    ssize_t w = ::write(fd, p, n);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Two processes bouncing a counter through two cache lines of shared memory,
// both spinning: no daemon, no syscalls. The floor of any cross-process path.
class ShmFloor final : public Transport {
 public:
  ShmFloor() {
    void* mem = ::mmap(nullptr, 3 * sizeof(Line), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
      error_ = "mmap failed";
      return;
    }
    ping_ = new (mem) Line{};
    pong_ = new (static_cast<Line*>(mem) + 1) Line{};
    parked_ = new (static_cast<Line*>(mem) + 2) std::atomic<uint32_t>{0};
    child_ = ::fork();
    if (child_ == 0) echo_loop();
  }
  ~ShmFloor() override {
    if (child_ > 0) {
      parked_->store(0, std::memory_order_release);
      ping_->value.store(kStop, std::memory_order_release);
      ring::futex_wake_all(parked_);
      ::waitpid(child_, nullptr, 0);
    }
    if (ping_) ::munmap(ping_, 3 * sizeof(Line));
  }
  const char* name() const override { return "shm_floor"; }
  // Parked, the child sleeps in a futex instead of spinning, so it takes no
  // CPU (and causes no wake-ups) while other transports are measured.
  void park() override {
    parked_->store(1, std::memory_order_relaxed);
    ping_->value.store(kPark, std::memory_order_release);
  }
  bool unpark() override {
    parked_->store(0, std::memory_order_release);
    ring::futex_wake_all(parked_);
    return round_trip();
  }
  bool round_trip() override {
    ++counter_;
    // release: publishes the counter to the child's acquire load.
    ping_->value.store(counter_, std::memory_order_release);
    // acquire: pairs with the child's release store of its echo.
    while (pong_->value.load(std::memory_order_acquire) != counter_) cpu_relax();
    return true;
  }

 private:
  struct alignas(64) Line {
    std::atomic<uint64_t> value;
  };
  static_assert(std::atomic<uint64_t>::is_always_lock_free);
  static constexpr uint64_t kStop = ~uint64_t{0};
  static constexpr uint64_t kPark = kStop - 1;

  [[noreturn]] void echo_loop() {
    uint64_t seen = 0;
    for (;;) {
      uint64_t v = ping_->value.load(std::memory_order_acquire);
      if (v == kStop) ::_exit(0);
      if (v == kPark) {
        ring::futex_wait(parked_, 1, -1);  // returns at once if unparked meanwhile
        continue;
      }
      if (v != seen) {
        seen = v;
        pong_->value.store(v, std::memory_order_release);
      } else {
        cpu_relax();
      }
    }
  }

  Line* ping_ = nullptr;
  Line* pong_ = nullptr;
  std::atomic<uint32_t>* parked_ = nullptr;  // futex word: 1 while parked
  pid_t child_ = -1;
  uint64_t counter_ = 0;
};

// The request's bytes to an echo server over a unix stream socket and back:
// what a model server reached over a local socket pays before any work.
class UnixSocket final : public Transport {
 public:
  explicit UnixSocket(std::size_t request_bytes)
      : request_(request_bytes, 'x'), reply_(request_bytes) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      error_ = "socketpair failed";
      return;
    }
    child_ = ::fork();
    if (child_ == 0) {
      ::close(fds[0]);
      std::vector<char> buf(request_bytes);
      while (read_full(fds[1], buf.data(), buf.size()) &&
             write_full(fds[1], buf.data(), buf.size())) {
      }
      ::_exit(0);
    }
    ::close(fds[1]);
    fd_ = fds[0];
  }
  ~UnixSocket() override {
    if (fd_ >= 0) ::close(fd_);
    if (child_ > 0) ::waitpid(child_, nullptr, 0);
  }
  const char* name() const override { return "unix_socket"; }
  bool round_trip() override {
    return write_full(fd_, request_.data(), request_.size()) &&
           read_full(fd_, reply_.data(), reply_.size());
  }

 private:
  std::vector<char> request_, reply_;
  int fd_ = -1;
  pid_t child_ = -1;
};

class Coproc final : public Transport {
 public:
  Coproc(const std::string& socket_path, const std::string& model_name,
         std::size_t* request_bytes) {
    coproc_connect_options options;
    coproc_connect_options_init(&options);
    options.socket_path = socket_path.empty() ? nullptr : socket_path.c_str();
    if (coproc_connect(&options, &client_) != COPROC_OK) {
      error_ = std::string("connect: ") + coproc_last_error();
      return;
    }
    if (coproc_model_find(client_, model_name.c_str(), &model_) != COPROC_OK) {
      error_ = coproc_last_error();
      return;
    }
    inputs_ = make_tensors(true, coproc_model_input_count(model_));
    outputs_ = make_tensors(false, coproc_model_output_count(model_));
    if (request_bytes) *request_bytes = socket_request_bytes();
  }
  ~Coproc() override { coproc_disconnect(client_); }
  const char* name() const override { return "coproc"; }
  std::vector<int64_t> daemon_exec_ns() const override { return exec_ns_; }
  bool round_trip() override {
    coproc_request* request = nullptr;
    coproc_status s = coproc_submit(client_, model_, inputs_.data(), inputs_.size(),
                                    outputs_.data(), outputs_.size(), nullptr, &request);
    if (s == COPROC_OK) s = coproc_wait(request, -1);
    coproc_timing timing;
    if (s == COPROC_OK && coproc_request_timing(request, &timing) == COPROC_OK) {
      exec_ns_.push_back(static_cast<int64_t>(timing.exec_ns));
    }
    if (request) coproc_release(request);
    if (s != COPROC_OK) error_ = std::string(coproc_strerror(s)) + ": " + coproc_last_error();
    return s == COPROC_OK;
  }

 private:
  std::vector<coproc_tensor> make_tensors(bool input, std::size_t n) {
    std::vector<coproc_tensor> tensors(n);
    if (!alloc_model_tensors(client_, model_, input, tensors.data(), n)) {
      error_ = coproc_last_error();
      return {};
    }
    return tensors;
  }

  // A socket has no shared arena, so it carries the Request and the inputs.
  std::size_t socket_request_bytes() const {
    flatbuffers::FlatBufferBuilder fbb;
    auto refs = [&](const std::vector<coproc_tensor>& ts) {
      std::vector<flatbuffers::Offset<fb::TensorRef>> v;
      for (const auto& t : ts) {
        v.push_back(fb::CreateTensorRef(fbb, 0, static_cast<fb::DType>(t.dtype),
                                        fbb.CreateVector(t.shape, static_cast<std::size_t>(t.rank)),
                                        0, t.bytes));
      }
      return fbb.CreateVector(v);
    };
    auto in = refs(inputs_);
    auto out = refs(outputs_);
    fbb.Finish(
        fb::CreateRequest(fbb, 1, fb::RequestKind::Infer, 0, fb::Priority::Normal, 0, in, out));
    std::size_t bytes = fbb.GetSize();
    for (const auto& t : inputs_) bytes += t.bytes;
    return bytes;
  }

  coproc_client* client_ = nullptr;
  coproc_model* model_ = nullptr;
  std::vector<coproc_tensor> inputs_, outputs_;
  std::vector<int64_t> exec_ns_;
};

// The model run directly in this process by the same runtime: no transport.
class InProcess final : public Transport {
 public:
  InProcess(const std::string& model_path, int cpu_threads) {
    kernels::cpu::set_threads(cpu_threads);
    auto model = runtime::Model::load(model_path);
    if (!model.ok()) {
      error_ = model.error().message;
      return;
    }
    session_ = cpu_session(model.value());
    std::vector<runtime::Shape> shapes;
    for (const auto& spec : model.value()->inputs())
      shapes.push_back(runtime::concrete_shape(spec, 1));
    const auto& specs = model.value()->inputs();
    in_.resize(shapes.size());
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      in_[i].resize(static_cast<std::size_t>(shapes[i].elements()) *
                    runtime::dtype_bytes(specs[i].dtype));
      fill_input(static_cast<int>(specs[i].dtype), specs[i].name, i, in_[i]);
      in_ptrs_.push_back(in_[i].data());
    }
    // With the values: a model whose input values set shapes inside it plans per value.
    auto plan = session_->prepare(shapes, in_ptrs_);
    if (!plan.ok()) {
      error_ = plan.error().message;
      return;
    }
    plan_ = plan.value();
    out_.resize(plan_->num_outputs());
    for (std::size_t j = 0; j < out_.size(); ++j) {
      out_[j].resize(plan_->output_bytes(j));
      out_ptrs_.push_back(out_[j].data());
    }
  }

  const char* name() const override { return "in_process"; }
  bool round_trip() override { return session_->run(*plan_, in_ptrs_, out_ptrs_).ok(); }

 private:
  std::unique_ptr<runtime::Session> session_;
  const runtime::Plan* plan_ = nullptr;
  std::vector<std::vector<std::byte>> in_, out_;
  std::vector<const void*> in_ptrs_;
  std::vector<void*> out_ptrs_;
};

}  // namespace

bool alloc_model_tensors(coproc_client* client, const coproc_model* model, bool input,
                         coproc_tensor* out, std::size_t n, const ShapeRule& rule) {
  for (std::size_t i = 0; i < n; ++i) {
    coproc_tensor_info info;
    (input ? coproc_model_input : coproc_model_output)(model, i, &info);
    coproc_tensor& t = out[i];
    t = coproc_tensor{};
    t.dtype = info.dtype;
    t.rank = info.rank;
    auto dims = resolve_dims({info.shape, static_cast<std::size_t>(info.rank)}, rule);
    uint64_t elements = 1;
    for (int32_t d = 0; d < info.rank; ++d) {
      t.shape[d] = dims[static_cast<std::size_t>(d)];
      elements *= static_cast<uint64_t>(t.shape[d]);
    }
    t.bytes = elements * coproc_dtype_bytes(info.dtype);
    if (coproc_alloc(client, t.bytes, &t.data) != COPROC_OK) return false;
    std::span<std::byte> bytes(static_cast<std::byte*>(t.data), t.bytes);
    if (input) {
      fill_input(info.dtype, info.name, i, bytes);
    } else {
      std::memset(t.data, 0, t.bytes);
    }
  }
  return true;
}

std::unique_ptr<Transport> make_shm_floor() { return std::make_unique<ShmFloor>(); }
std::unique_ptr<Transport> make_unix_socket(std::size_t request_bytes) {
  return std::make_unique<UnixSocket>(request_bytes);
}
std::unique_ptr<Transport> make_coproc(const std::string& socket_path,
                                       const std::string& model_name, std::size_t* request_bytes) {
  return std::make_unique<Coproc>(socket_path, model_name, request_bytes);
}
std::unique_ptr<Transport> make_in_process(const std::string& model_path, int cpu_threads) {
  return std::make_unique<InProcess>(model_path, cpu_threads);
}

std::vector<std::vector<int64_t>> measure_interleaved(std::span<Transport* const> transports,
                                                      const Budget& budget) {
  std::vector<std::vector<int64_t>> samples(transports.size());
  std::vector<bool> failed(transports.size(), false);
  for (std::size_t t = 0; t < transports.size(); ++t) {
    int64_t warm_end = now_ns() + budget.warmup_ns;
    while (!failed[t] && now_ns() < warm_end) failed[t] = !transports[t]->round_trip();
    transports[t]->park();
    samples[t].reserve(budget.max_samples);
  }
  const int rounds = std::max(budget.rounds, 1);
  const std::size_t per_round = (budget.max_samples + rounds - 1) / rounds;
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t t = 0; t < transports.size(); ++t) {
      if (failed[t] || !transports[t]->unpark()) {
        failed[t] = true;
        continue;
      }
      int64_t end = now_ns() + budget.measure_ns / rounds;
      std::size_t target = std::min(budget.max_samples, samples[t].size() + per_round);
      while (samples[t].size() < target) {
        int64_t t0 = now_ns();
        if (!transports[t]->round_trip()) {
          failed[t] = true;
          break;
        }
        int64_t t1 = now_ns();
        samples[t].push_back(t1 - t0);
        if (t1 >= end) break;
      }
      transports[t]->park();
    }
  }
  for (std::size_t t = 0; t < transports.size(); ++t) {
    if (failed[t]) samples[t].clear();
  }
  return samples;
}

}  // namespace coproc::bench
