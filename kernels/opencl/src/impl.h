// What the OpenCL device's .cc files share: the kernels of our program, Device::Impl (the
// device's OpenCL objects and its first failure since finish()), and the launch helpers every
// enqueue uses. Internal to kernels/opencl.
#pragma once

#include <CL/cl.h>

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "coproc/kernels/opencl.h"

namespace coproc::kernels::opencl {
namespace detail {

// Every kernel of the program (the .cl files); cl_util.cc names them in this order. Groups that
// a dtype selects are in DType order (float32, int64, int32, bool) so that kernel_for() can
// index them.
enum class KernelId : uint8_t {
  kUnaryFloat,
  kBinaryFloat,  // DType order, no bool
  kBinaryLong,
  kBinaryInt,
  kNegLong,
  kNegInt,
  kEqualFloat,  // DType order
  kEqualLong,
  kEqualInt,
  kEqualBool,
  kCopyBits32,
  kCopyBits64,
  kCopyBool,
  kWhereBits32,
  kWhereBits64,
  kWhereBool,
  kCastFirst,                      // 16 kernels, from-major, both in DType order
  kReduceFloat = kCastFirst + 16,  // DType order, no bool
  kReduceLong,
  kReduceInt,
  kArgMaxFloat,  // DType order, no bool
  kArgMaxLong,
  kArgMaxInt,
  kSoftmaxRows,
  kSoftmaxLines,
  kLayerNorm,
  kBiasActivation,
  kScaleMatrix,
  kGatherBits8Int,
  kGatherBits8Long,
  kGatherBits32Int,
  kGatherBits32Long,
  kCount,
};
inline constexpr std::size_t kKernelCount = static_cast<std::size_t>(KernelId::kCount);

// The kernel's function name in the program.
const char* kernel_name(KernelId id);

// The kernel `dtype` picks in a group that starts at `first`.
inline KernelId kernel_for(KernelId first, DType dtype) {
  return static_cast<KernelId>(static_cast<int>(first) + static_cast<int>(dtype));
}

// Sets *out to message when out is not null (the error out-parameters of open() and the alloc
// functions may be).
inline void report(std::string* out, std::string message) {
  if (out != nullptr) *out = std::move(message);
}

// "CL_INVALID_VALUE (-30)".
std::string cl_error_name(cl_int status);

// "float32", "int64", "int32", "bool".
const char* dtype_name(DType dtype);

// A __local float[count] kernel argument.
struct LocalFloats {
  std::size_t count = 0;
};

// The only types our kernels take by value; anything else is a mistake the compiler should catch
// (a kernel's long given an int would fail at run time with CL_INVALID_ARG_SIZE).
template <class T>
concept KernelArg =
    std::same_as<T, cl_mem> || std::same_as<T, int32_t> || std::same_as<T, int64_t> ||
    std::same_as<T, uint64_t> || std::same_as<T, float> || std::same_as<T, cl_long8>;

template <KernelArg T>
cl_int set_arg(cl_kernel kernel, cl_uint index, const T& value) {
  return clSetKernelArg(kernel, index, sizeof(T), &value);
}
inline cl_int set_arg(cl_kernel kernel, cl_uint index, const LocalFloats& local) {
  return clSetKernelArg(kernel, index, local.count * sizeof(float), nullptr);
}

// The GEMM shapes reserve_gemm has run: trans_a, trans_b, m, n, k, lda, ldb, ldc.
using GemmShape = std::array<int64_t, 8>;

}  // namespace detail

struct Device::Impl {
  DeviceInfo info;
  cl_device_id device = nullptr;
  cl_context context = nullptr;
  cl_command_queue queue = nullptr;     // kernels, GEMMs, and write/read/copy/fill
  cl_command_queue transfer = nullptr;  // upload and download_after: transfers that overlap
  cl_program program = nullptr;
  std::array<cl_kernel, detail::kKernelCount> kernels{};
  // Each kernel's work-group size: a power of two, at most kGroupSize (device.cc).
  std::array<std::size_t, detail::kKernelCount> local_sizes{};

  // The gather error record (kernel_codes.h), and whether a gather ran since finish() read it.
  cl_mem gather_record = nullptr;
  bool gather_pending = false;

  // CLBlast's temporary buffer for gemm(), grown by reserve_gemm to the largest size it needs.
  cl_mem gemm_temp = nullptr;
  std::size_t gemm_temp_bytes = 0;
  std::set<detail::GemmShape> reserved_gemms;

  // The first failure of an enqueue since finish(); empty when there was none.
  std::string error;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl();

  // Device::open's steps after choosing the device: context, queue, our program and its kernels,
  // the gather record, CLBlast's warm-up. False with a message naming what failed.
  bool create(std::string* message);
  bool build_program(std::string* message);
  bool warm_up_clblast(std::string* message);  // gemm.cc

  // Records `message` unless a failure is recorded already: finish() reports the first.
  void fail(const std::string& message);
  // Records "<call>: <api>: <status>" and returns false unless status is CL_SUCCESS.
  bool check(cl_int status, const char* call, const char* api);

  // m's offset in elements of element_bytes, or nullopt (and a failure recorded) when its byte
  // offset is not a multiple of that.
  std::optional<int64_t> element_offset(Mem m, std::size_t element_bytes, const char* call);

  cl_kernel kernel(detail::KernelId id) const { return kernels[static_cast<std::size_t>(id)]; }
  std::size_t local_size(detail::KernelId id) const {
    return local_sizes[static_cast<std::size_t>(id)];
  }

  // Sets the kernel's arguments in order; false (and a failure recorded) if OpenCL refuses one.
  template <class... Args>
  bool bind(detail::KernelId id, const char* call, const Args&... args) {
    const cl_kernel k = kernel(id);
    cl_uint index = 0;
    cl_int status = CL_SUCCESS;
    ((status = status == CL_SUCCESS ? detail::set_arg(k, index++, args) : status), ...);
    return check(status, call, "clSetKernelArg");
  }

  // Enqueues the kernel over `items` work items (rounded up to its work-group size; the kernels
  // check their index), or over `groups` whole work-groups.
  template <class... Args>
  void launch(detail::KernelId id, const char* call, uint64_t items, const Args&... args) {
    if (!bind(id, call, args...)) return;
    const std::size_t local = local_size(id);
    const std::size_t global = (items + local - 1) / local * local;
    enqueue(id, call, global, local);
  }
  template <class... Args>
  void launch_groups(detail::KernelId id, const char* call, uint64_t groups, const Args&... args) {
    if (!bind(id, call, args...)) return;
    enqueue(id, call, groups * local_size(id), local_size(id));
  }
  void enqueue(detail::KernelId id, const char* call, std::size_t global, std::size_t local);

  // C = beta * C over `batch` [m, n] matrices: the GEMM of an empty product (k == 0).
  void scale_matrices(const char* call, Mem c, int64_t ldc, int64_t stride, int64_t m, int64_t n,
                      int64_t batch, float beta);
};

}  // namespace coproc::kernels::opencl
