#include "transports.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>

#include "coproc.h"
#include "coproc/coproc_generated.h"
#include "coproc/kernels/cpu.h"
#include "runtime/model.h"

namespace coproc::bench {

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Runs `round_trip` through a warm-up, then measures each call until the
// budget's time or sample count runs out. round_trip returns false on error.
template <class F>
std::vector<int64_t> run_loop(const Budget& budget, F&& round_trip) {
  int64_t warm_end = now_ns() + budget.warmup_ns;
  while (now_ns() < warm_end) {
    if (!round_trip()) return {};
  }
  std::vector<int64_t> samples;
  samples.reserve(budget.max_samples);
  int64_t end = now_ns() + budget.measure_ns;
  while (samples.size() < budget.max_samples) {
    int64_t t0 = now_ns();
    if (!round_trip()) return {};
    int64_t t1 = now_ns();
    samples.push_back(t1 - t0);
    if (t1 >= end) break;
  }
  return samples;
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

}  // namespace

std::vector<int64_t> measure_shm_floor(const Budget& budget, std::string* error) {
  struct alignas(64) Line {
    std::atomic<uint64_t> value;
  };
  static_assert(std::atomic<uint64_t>::is_always_lock_free);
  constexpr uint64_t kStop = ~uint64_t{0};
  void* mem = ::mmap(nullptr, 2 * sizeof(Line), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    *error = "mmap failed";
    return {};
  }
  auto* ping = new (mem) Line{};
  auto* pong = new (static_cast<Line*>(mem) + 1) Line{};
  pid_t child = ::fork();
  if (child == 0) {
    uint64_t seen = 0;
    for (;;) {
      // acquire/release pairs: each side publishes its counter to the other.
      uint64_t v = ping->value.load(std::memory_order_acquire);
      if (v == kStop) ::_exit(0);
      if (v != seen) {
        seen = v;
        pong->value.store(v, std::memory_order_release);
      } else {
        cpu_relax();
      }
    }
  }
  uint64_t counter = 0;
  auto samples = run_loop(budget, [&] {
    ++counter;
    ping->value.store(counter, std::memory_order_release);
    while (pong->value.load(std::memory_order_acquire) != counter) cpu_relax();
    return true;
  });
  ping->value.store(kStop, std::memory_order_release);
  ::waitpid(child, nullptr, 0);
  ::munmap(mem, 2 * sizeof(Line));
  return samples;
}

std::vector<int64_t> measure_unix_socket(std::size_t request_bytes, const Budget& budget,
                                         std::string* error) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    *error = "socketpair failed";
    return {};
  }
  pid_t child = ::fork();
  if (child == 0) {
    ::close(fds[0]);
    std::vector<char> buf(request_bytes);
    while (read_full(fds[1], buf.data(), buf.size()) && write_full(fds[1], buf.data(), buf.size())) {
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::vector<char> request(request_bytes, 'x'), reply(request_bytes);
  auto samples = run_loop(budget, [&] {
    return write_full(fds[0], request.data(), request.size()) &&
           read_full(fds[0], reply.data(), reply.size());
  });
  ::close(fds[0]);
  ::waitpid(child, nullptr, 0);
  if (samples.empty()) *error = "echo server failed";
  return samples;
}

std::vector<int64_t> measure_coproc(const std::string& socket_path, const std::string& model_name,
                                    const Budget& budget, std::size_t* request_bytes,
                                    std::string* error) {
  coproc_connect_options options;
  coproc_connect_options_init(&options);
  options.socket_path = socket_path.empty() ? nullptr : socket_path.c_str();
  coproc_client* client = nullptr;
  if (coproc_connect(&options, &client) != COPROC_OK) {
    *error = std::string("connect: ") + coproc_last_error();
    return {};
  }
  coproc_model* model = nullptr;
  if (coproc_model_find(client, model_name.c_str(), &model) != COPROC_OK) {
    *error = coproc_last_error();
    coproc_disconnect(client);
    return {};
  }
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  auto make_tensors = [&](bool input, std::size_t n) {
    std::vector<coproc_tensor> tensors(n);
    for (std::size_t i = 0; i < n; ++i) {
      coproc_tensor_info info;
      (input ? coproc_model_input : coproc_model_output)(model, i, &info);
      coproc_tensor& t = tensors[i];
      t.dtype = info.dtype;
      t.rank = info.rank;
      uint64_t elements = 1;
      for (int32_t d = 0; d < info.rank; ++d) {
        t.shape[d] = info.shape[d] < 0 ? 1 : info.shape[d];
        elements *= static_cast<uint64_t>(t.shape[d]);
      }
      t.bytes = elements * coproc_dtype_bytes(info.dtype);
      coproc_alloc(client, t.bytes, &t.data);
      if (input && info.dtype == COPROC_DTYPE_FLOAT32) {
        auto* f = static_cast<float*>(t.data);
        for (uint64_t e = 0; e < elements; ++e) f[e] = dist(rng);
      }
    }
    return tensors;
  };
  auto inputs = make_tensors(true, coproc_model_input_count(model));
  auto outputs = make_tensors(false, coproc_model_output_count(model));

  if (request_bytes) {
    // What a socket transport would carry: an equivalent Request flatbuffer
    // plus the input data itself, since a socket has no shared arena.
    flatbuffers::FlatBufferBuilder fbb;
    auto refs = [&](const std::vector<coproc_tensor>& ts) {
      std::vector<flatbuffers::Offset<coproc::fb::TensorRef>> v;
      for (const auto& t : ts) {
        v.push_back(coproc::fb::CreateTensorRef(fbb, 0, static_cast<coproc::fb::DType>(t.dtype),
                                                fbb.CreateVector(t.shape, static_cast<std::size_t>(t.rank)),
                                                0, t.bytes));
      }
      return fbb.CreateVector(v);
    };
    auto in = refs(inputs);
    auto out = refs(outputs);
    fbb.Finish(coproc::fb::CreateRequest(fbb, 1, coproc::fb::RequestKind::Infer, 0,
                                         coproc::fb::Priority::Normal, 0, in, out));
    *request_bytes = fbb.GetSize();
    for (const auto& t : inputs) *request_bytes += t.bytes;
  }

  coproc_status failure = COPROC_OK;
  auto samples = run_loop(budget, [&] {
    coproc_request* request = nullptr;
    coproc_status s = coproc_submit(client, model, inputs.data(), inputs.size(), outputs.data(),
                                    outputs.size(), nullptr, &request);
    if (s == COPROC_OK) s = coproc_wait(request, -1);
    if (request) coproc_release(request);
    failure = s;
    return s == COPROC_OK;
  });
  if (failure != COPROC_OK) {
    *error = std::string(coproc_strerror(failure)) + ": " + coproc_last_error();
  }
  coproc_disconnect(client);
  return samples;
}

std::vector<int64_t> measure_in_process(const std::string& model_path, int cpu_threads,
                                        const Budget& budget, std::string* error) {
  coproc::kernels::cpu::set_threads(cpu_threads);
  auto model = runtime::Model::load(model_path);
  if (!model.ok()) {
    *error = model.error().message;
    return {};
  }
  runtime::Session session(model.value());
  std::vector<runtime::Shape> shapes;
  for (const auto& spec : model.value()->inputs()) {
    runtime::Shape s;
    s.rank = static_cast<int32_t>(spec.dims.size());
    for (int32_t d = 0; d < s.rank; ++d) s.dims[d] = spec.dims[d] < 0 ? 1 : spec.dims[d];
    shapes.push_back(s);
  }
  auto plan = session.prepare(shapes);
  if (!plan.ok()) {
    *error = plan.error().message;
    return {};
  }
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<std::vector<float>> in(shapes.size()), out(model.value()->outputs().size());
  std::vector<const void*> in_ptrs;
  std::vector<void*> out_ptrs;
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    in[i].resize(static_cast<std::size_t>(shapes[i].elements()));
    for (auto& v : in[i]) v = dist(rng);
    in_ptrs.push_back(in[i].data());
  }
  for (std::size_t j = 0; j < out.size(); ++j) {
    out[j].resize(static_cast<std::size_t>((*plan)->output_shape(j).elements()));
    out_ptrs.push_back(out[j].data());
  }
  return run_loop(budget, [&] { return session.run(**plan, in_ptrs, out_ptrs).ok(); });
}

}  // namespace coproc::bench
