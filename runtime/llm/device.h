// Where a Context's forward pass runs. An architecture (arch/*.cc) is written once against this
// interface, and every device implements its pieces: the CPU with layers.h (device_cpu.cc), an
// OpenCL device with its own kernels (device/opencl/).
//
// Activations live on the device, in buffers the architecture names by number (Act) and sizes
// with reserve(); every piece reads and writes whole buffers as dense [rows, width] matrices.
// Weights are the model's (Matrix, norm vectors): a device made for a model has its own copy of
// each (the CPU uses the mapped file in place) and finds it from the host view the architecture
// passes. The device keeps the keys and values in its own storage with the KvCache's layout,
// addressed by the KvCache's block tables (the CPU's storage is the KvCache's own).
//
// A step is begin_step(batch, kv), the pieces, and read() of the logits. The pieces may run
// asynchronously; read() waits for them and reports the first failure of the step.
//
// Batch invariance (layers.h) holds on every device: a row's results do not depend on the other
// rows of the step.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "coproc/base/result.h"
#include "llm/batch.h"
#include "llm/model.h"

namespace coproc::llm {

class KvCache;

// A device activation buffer, numbered by the architecture (small numbers: 0, 1, 2, ...).
using Act = int32_t;

enum class DeviceKind : uint8_t { kCpu, kOpenCl };

// Which device a Context runs on. For OpenCL, names match case-insensitive substrings of the
// platform's and the device's names (empty: the first GPU, else the first device), as in
// kernels/opencl.
struct DeviceChoice {
  DeviceKind kind = DeviceKind::kCpu;
  std::string platform;
  std::string device;
};

class LlmDevice {
 public:
  virtual ~LlmDevice() = default;
  // "cpu", or the OpenCL device's name.
  virtual std::string name() const = 0;

  // Makes buffer `a` hold at least `floats` floats; its contents are then unspecified.
  virtual void reserve(Act a, int64_t floats) = 0;

  // Starts a step: the batch's entries (the rows of every piece below) and, for each, its
  // sequence's block table in `kv`, whose blocks Context reserved.
  virtual void begin_step(const Batch& batch, KvCache& kv) = 0;

  // x[r] = row entries[r].token of the table.
  virtual void embed(const Matrix& table, Act x) = 0;
  // y = x / sqrt(mean(x^2) + eps) * w over `rows` rows of n; w is one of the model's norms.
  virtual void rms_norm(Act x, const float* w, int64_t rows, int64_t n, float eps, Act y) = 0;
  // y[i][j] = sum_k W[j][k] x[i][k], y dense [rows, w.rows]. Quantized weights take the
  // activations quantized to int8 per 32-block, as the CPU's kernels do.
  virtual void matmul(const Matrix& w, Act x, int64_t rows, Act y) = 0;
  // Adjacent-pair RoPE (layers.h, rope) of each row's n_heads heads at entries[r].pos; x dense
  // [rows, n_heads * head_dim].
  virtual void rope(Act x, int32_t n_heads, int32_t head_dim, int32_t rope_dim,
                    float freq_base) = 0;
  // Stores row r of k and v ([rows, n_head_kv * head_dim]) as layer `layer`'s key and value of
  // entries[r]'s sequence at entries[r].pos.
  virtual void store_kv(int32_t layer, Act k, Act v) = 0;
  // layers.h's attention: q [rows, n_head * head_dim] -> out, same shape.
  virtual void attention(int32_t layer, Act q, Act out) = 0;
  // gate[i] = silu(gate[i]) * up[i] for i < n.
  virtual void swiglu(Act gate, Act up, int64_t n) = 0;
  // x[i] += y[i] for i < n.
  virtual void add(Act x, Act y, int64_t n) = 0;
  // dst[i] = src[rows[i]] for rows of `width` floats.
  virtual void copy_rows(Act src, std::span<const int32_t> rows, int64_t width, Act dst) = 0;
  // Copies the first `floats` floats of `src` to host memory, once everything enqueued before it
  // has run. A device failure since begin_step is kInternal, naming what failed.
  virtual Status read(Act src, int64_t floats, float* host) = 0;
  // Waits for the step's work; the first device failure since begin_step, as read().
  virtual Status finish() = 0;
};

// The device `choice` names, made for `model` with KV storage for `kv`'s blocks (both must
// outlive it). kUnavailable when it cannot be opened or the model does not fit, saying why.
Result<std::unique_ptr<LlmDevice>> make_device(const DeviceChoice& choice, const Model& model,
                                               const KvCache& kv);

// The CPU device: layers.h over host buffers, the KvCache's own storage (device_cpu.cc).
std::unique_ptr<LlmDevice> make_cpu_device(const Model& model);
// The OpenCL device (device/opencl/cl_device.cc).
Result<std::unique_ptr<LlmDevice>> make_opencl_device(const DeviceChoice& choice,
                                                      const Model& model, const KvCache& kv);

}  // namespace coproc::llm
