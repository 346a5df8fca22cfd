// Small RAII helpers over the C API for the integration tests.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "coproc.h"

namespace coproc::test {

struct ClientHandle {
  coproc_client* c = nullptr;
  explicit ClientHandle(const std::string& socket, int64_t spin_ns = 50'000) {
    coproc_connect_options o;
    coproc_connect_options_init(&o);
    o.socket_path = socket.c_str();
    o.spin_ns = spin_ns;
    status = coproc_connect(&o, &c);
  }
  ~ClientHandle() { coproc_disconnect(c); }
  ClientHandle(const ClientHandle&) = delete;
  ClientHandle& operator=(const ClientHandle&) = delete;
  coproc_model* model(const char* name) {
    coproc_model* m = nullptr;
    EXPECT_EQ(coproc_model_find(c, name, &m), COPROC_OK) << coproc_last_error();
    return m;
  }
  coproc_status status = COPROC_OK;
};

// A float32 tensor of `shape` allocated in the client's arena.
inline coproc_tensor arena_tensor(coproc_client* c, std::vector<int64_t> shape,
                                  const float* data = nullptr) {
  coproc_tensor t{};
  t.dtype = COPROC_DTYPE_FLOAT32;
  t.rank = static_cast<int32_t>(shape.size());
  uint64_t n = 1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    t.shape[d] = shape[d];
    n *= static_cast<uint64_t>(shape[d]);
  }
  t.bytes = n * sizeof(float);
  EXPECT_EQ(coproc_alloc(c, t.bytes, &t.data), COPROC_OK) << coproc_last_error();
  if (data && t.data) std::memcpy(t.data, data, t.bytes);
  return t;
}

inline const float* floats(const coproc_tensor& t) { return static_cast<const float*>(t.data); }

}  // namespace coproc::test
