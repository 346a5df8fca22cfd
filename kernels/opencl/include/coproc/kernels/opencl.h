// The OpenCL device: one context and one in-order queue per device for the whole process, our own
// .cl kernels for everything but GEMM, and CLBlast for GEMM. The runtime (runtime/) plans a
// model once per set of shapes and calls these functions to ENQUEUE work; nothing here blocks the
// host except Device::open, the alloc functions and Device::finish.
//
// Tensors live in device buffers and are named by a Mem: a buffer and a byte offset. Element types
// are the runtime's: float32, int64, int32 and bool (one byte, 0 or 1). Strides and element
// offsets are in ELEMENTS; Mem offsets are in BYTES.
//
// Semantics follow the CPU device exactly (runtime/ops/*.cc), so results agree within
// floating-point tolerance and bit-exactly for integers and bools.
//
// Threads: a Device is used by one thread at a time (the runtime's executing thread); open() may
// run on any thread.
#pragma once

#include <CL/cl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace coproc::kernels::opencl {

inline constexpr int kMaxRank = 8;

// What list_devices() reports of one device.
struct DeviceInfo {
  int platform_index = -1;
  int device_index = -1;      // within its platform
  std::string platform;       // CL_PLATFORM_NAME
  std::string name;           // CL_DEVICE_NAME
  std::string version;        // CL_DEVICE_VERSION
  bool is_gpu = false;        // CL_DEVICE_TYPE_GPU
  uint64_t global_memory_bytes = 0;
  uint32_t compute_units = 0;
  uint32_t clock_mhz = 0;
  // The NUMA node of the device's PCI slot (cl_khr_pci_bus_info, then
  // /sys/bus/pci/devices/<bdf>/numa_node), or -1 when the system does not say.
  int numa_node = -1;
};

// Every device of every platform, in platform then device order. Empty when there is no OpenCL
// platform (no ICD installed): not an error.
std::vector<DeviceInfo> list_devices();

// Which device to open. Names match as case-insensitive substrings of CL_PLATFORM_NAME and
// CL_DEVICE_NAME; an index of -1 and an empty name match anything. With nothing set: the first
// GPU, else the first device.
struct Selector {
  std::string platform;
  std::string device;
  int platform_index = -1;
  int device_index = -1;
};

// The device `selector` picks among `devices` (list_devices()): its index in `devices`, or -1
// with a message naming what was asked and what exists.
int find_device(const std::vector<DeviceInfo>& devices, const Selector& selector,
                std::string* error);

enum class DType : uint8_t { kFloat32, kInt64, kInt32, kBool };
std::size_t dtype_bytes(DType dtype);

// A tensor on the device: a buffer and a byte offset into it.
struct Mem {
  cl_mem buffer = nullptr;
  std::size_t offset = 0;  // bytes
  bool present() const { return buffer != nullptr; }
};

// An event of one of the device's queues, released on destruction.
class Event {
 public:
  Event() = default;
  explicit Event(cl_event event) : event_(event) {}
  ~Event();
  Event(Event&& other) noexcept;
  Event& operator=(Event&& other) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  cl_event get() const { return event_; }

 private:
  cl_event event_ = nullptr;
};

// Bytes held in live Buffers, over every device of the process (relaxed: a gauge for the stats
// page, read by another thread without ordering anything).
std::size_t buffer_bytes_in_use();

// A device buffer, released on destruction.
class Buffer {
 public:
  Buffer() = default;
  Buffer(cl_mem buffer, std::size_t bytes);
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  cl_mem get() const { return buffer_; }
  std::size_t bytes() const { return bytes_; }
  Mem at(std::size_t offset = 0) const { return Mem{buffer_, offset}; }

 private:
  cl_mem buffer_ = nullptr;
  std::size_t bytes_ = 0;
};

// ---------------------------------------------------------------- elementwise

// One launch computes out[i] = f(a[i'], b[i''], c[i''']) for every index i of a box of `rank` dims
// (outermost first); each operand has its own strides (0 to broadcast a dim, negative to walk
// backwards). Offsets come from the Mems. Up to kMaxRank dims; rank 0 is one element.
struct Strided {
  int rank = 0;
  int64_t dims[kMaxRank] = {};
  int64_t out[kMaxRank] = {};
  int64_t a[kMaxRank] = {};
  int64_t b[kMaxRank] = {};
  int64_t c[kMaxRank] = {};
  int64_t elements() const;
};

enum class Elementwise : uint8_t {
  // unary, float32 only (a -> out)
  kRelu,
  kSigmoid,
  kTanh,
  kErf,
  kExp,
  kSqrt,
  kReciprocal,
  kGelu,  // kGelu: x * (1 + erf(x/sqrt2)) / 2
  // unary, float32, int64, int32 (a -> out); integers wrap (negating the minimum gives it back)
  kNeg,
  // unary, any dtype (a -> out): a copy; bools are written as 0 or 1
  kCopy,
  // binary, float32, int64, int32 (a, b -> out). Integers wrap; integer Div truncates toward
  // zero, x / 0 = 0 and min / -1 = min (ops/elementwise.cc).
  kAdd,
  kSub,
  kMul,
  kDiv,
  // binary: a float32, b float32 -> float32 (std::pow semantics); integer bases and exponents are
  // planned by the runtime on the host or refused, never sent here.
  kPow,
  // binary, any dtype -> bool: IEEE equality for floats (NaN equals nothing, -0 equals +0)
  kEqual,
  // ternary: a is the bool condition (nonzero = true), b and c any dtype (the same) -> b's dtype
  kWhere,
};

// Non-float dtypes follow the rules above; `dtype` is the dtype of the value operands (b for
// kWhere) and, except for kEqual, of the output.
struct ElementwiseCall {
  Elementwise op = Elementwise::kCopy;
  DType dtype = DType::kFloat32;
  Strided layout;
};

// numpy astype, as the CPU device's Cast (ops/tensor.cc, cast_value): float to integer truncates
// toward zero, and NaN or a value outside the target's range gives the target's MINIMUM (what
// numpy and ONNX Runtime give on x86; defined, where C++ is not); anything nonzero (NaN too) is
// true; bools read as 0 or 1; integer narrowing wraps.
struct CastCall {
  DType from = DType::kFloat32;
  DType to = DType::kFloat32;
  int64_t elements = 0;  // both operands dense
};

// ---------------------------------------------------------------- reductions and rows

// One output element per work item: it reduces, over a box of `reduced_rank` dims with input
// strides `reduced_strides`, the input elements starting at its own offset, which is the dot
// product of its index in `out_dims` with `in_strides`. Output dense.
enum class Reduce : uint8_t { kSum, kSumSquare, kMean, kMax, kArgMax, kArgMaxLast };
struct ReduceCall {
  Reduce op = Reduce::kSum;
  DType dtype = DType::kFloat32;  // input; output too, except kArgMax* (int64)
  int out_rank = 0;
  int64_t out_dims[kMaxRank] = {};
  int64_t in_strides[kMaxRank] = {};
  int reduced_rank = 0;
  int64_t reduced_dims[kMaxRank] = {};
  int64_t reduced_strides[kMaxRank] = {};
  // Empty reductions (a reduced dim of 0): kSum and kSumSquare give 0, kMean NaN (float), kMax the
  // lowest value (-inf for floats), kArgMax 0. Max and ArgMax propagate NaN as the CPU's do.
};

// Softmax over the middle dim of [outer, n, inner], dense: each (outer, inner) line of n values.
struct SoftmaxCall {
  int64_t outer = 0, n = 0, inner = 1;
};

// LayerNormalization of rows of n: y = (x - mean) * inv_std_dev * scale + bias, with
// inv_std_dev = 1 / sqrt(var + epsilon); scale and bias are n values (bias optional); mean and
// inv_std_dev (rows values each) are written when present.
struct LayerNormCall {
  int64_t rows = 0, n = 0;
  float epsilon = 1e-5f;
};

enum class Activation : uint8_t { kNone, kRelu, kGelu, kTanh, kSigmoid };

// Gather along one axis of data viewed as [outer, axis_dim, inner]: out[o, i, :] =
// data[o, idx[i], :] for each of `indices` indices (int64 or int32; negative ones count from the
// end). An index outside [-axis_dim, axis_dim) is never read through: the launch records the
// first such value with the call's tag, Device::finish() reports them, and the output is
// unspecified.
struct GatherCall {
  int64_t outer = 0, axis_dim = 0, indices = 0;
  int64_t inner_bytes = 0;  // bytes of one [inner] slice
  DType index_dtype = DType::kInt64;
  int32_t tag = 0;  // the caller's name for this launch (the runtime: its step number)
};

// What finish() found.
struct Failure {
  bool failed = false;
  // A Gather index out of range: the data was refused (the CPU device's kInvalidArgument), not
  // the device. message is "index V is out of range [-D, D)", the CPU device's words.
  bool bad_index = false;
  int32_t tag = -1;     // bad_index: the GatherCall's tag
  std::string message;  // otherwise: the OpenCL or CLBlast error, naming the call
};

class Device {
 public:
  // Opens the device: context, one in-order queue, every program of ours built, CLBlast's GEMM
  // kernels compiled and run once. Seconds on PoCL. Fails with a message naming what failed.
  static std::unique_ptr<Device> open(const Selector& selector, std::string* error);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const DeviceInfo& info() const;
  cl_context context() const;
  cl_command_queue queue() const;

  // Device memory; an empty Buffer and a message on failure.
  Buffer alloc(std::size_t bytes, std::string* error);
  // Host memory the device can reach fast (CL_MEM_ALLOC_HOST_PTR), mapped for the host at
  // *host for the buffer's whole life: staging for inputs and outputs.
  Buffer alloc_pinned(std::size_t bytes, void** host, std::string* error);

  // Copies, enqueued without blocking. The host memory must stay valid until finish().
  // write, read and copy go on the compute queue, in order with the kernels.
  void write(Mem dst, const void* src, std::size_t bytes);
  void read(void* dst, Mem src, std::size_t bytes);
  void copy(Mem dst, Mem src, std::size_t bytes);
  // Fills `elements` elements of `element_bytes` (1, 4 or 8) with the pattern at `value`.
  void fill(Mem dst, const void* value, std::size_t element_bytes, int64_t elements);

  // Kernels, enqueued. Absent operands (Mem{}) only where documented.
  void elementwise(const ElementwiseCall& call, Mem out, Mem a, Mem b = {}, Mem c = {});
  void cast(const CastCall& call, Mem out, Mem in);
  void reduce(const ReduceCall& call, Mem out, Mem in);
  void softmax(const SoftmaxCall& call, Mem out, Mem in);
  void layer_norm(const LayerNormCall& call, Mem y, Mem x, Mem scale, Mem bias, Mem mean,
                  Mem inv_std_dev);
  // y[r, c] = act(y[r, c] + bias[c]) over a dense [rows, cols]; bias optional.
  void bias_activation(Mem y, int64_t rows, int64_t cols, Mem bias, Activation activation);
  void gather(const GatherCall& call, Mem out, Mem data, Mem indices);

  // Row-major float32 C = alpha * op(A) op(B) + beta * C through CLBlast, with the device's
  // pre-allocated temporary buffer (grown by reserve_gemm to the largest size seen). Leading
  // dimensions in elements.
  void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, Mem a,
            int64_t lda, Mem b, int64_t ldb, float beta, Mem c, int64_t ldc);
  // `batch` GEMMs of the same sizes, operand i at its Mem plus i * stride elements (a stride may
  // be 0: the same matrix for every i).
  void gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    Mem a, int64_t lda, int64_t stride_a, Mem b, int64_t ldb, int64_t stride_b,
                    float beta, Mem c, int64_t ldc, int64_t stride_c, int64_t batch);
  // Called when planning, once per GEMM shape: compiles (warms) CLBlast's kernels for it and
  // grows the temporary buffer, so that gemm() allocates nothing. Returns false with a message
  // when CLBlast cannot run it.
  bool reserve_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, int64_t lda,
                    int64_t ldb, int64_t ldc, std::string* error);

  // Transfers that overlap execution: the device has a second in-order queue for copies.
  // upload() enqueues a host-to-device copy there and returns its event; compute_after(e) makes
  // what is enqueued on the compute queue from then on wait for e; compute_marker() is an event
  // for all that is enqueued on the compute queue so far; download_after() enqueues a
  // device-to-host copy on the transfer queue that starts once `after` has completed. So a run
  // split in parts can upload part i + 1 and download part i - 1 while part i computes. A failed
  // enqueue returns an empty Event (waiting on it waits for nothing) and is reported by finish().
  Event upload(Mem dst, const void* src, std::size_t bytes);
  void compute_after(const Event& e);
  Event compute_marker();
  void download_after(void* dst, Mem src, std::size_t bytes, const Event& after);

  // Waits for everything enqueued on both queues and reports the first failure since the last
  // finish().
  Failure finish();

 private:
  struct Impl;
  explicit Device(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace coproc::kernels::opencl
