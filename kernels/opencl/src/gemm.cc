// GEMM through CLBlast: row-major float32, on the device's queue.
//
// CLBlast compiles one OpenCL program per routine and precision (on first use, in seconds on
// PoCL) and caches it for the context, so Device::open runs each routine we use once. Its
// indirect GEMM (large sizes) needs a temporary buffer for padded copies of the operands: gemm()
// passes the device's own, which reserve_gemm sizes, so that a planned run allocates nothing.
// The strided-batched routine takes no such buffer; it allocates its own when it needs one.
#include <clblast.h>

#include <cstdint>
#include <string>

#include "impl.h"

namespace coproc::kernels::opencl {

namespace {

using clblast::StatusCode;
using detail::report;

constexpr auto kRowMajor = clblast::Layout::kRowMajor;

clblast::Transpose transpose(bool t) {
  return t ? clblast::Transpose::kYes : clblast::Transpose::kNo;
}

std::string clblast_error(StatusCode status) {
  // CLBlast passes OpenCL's codes through; its own start at -1007.
  const int code = static_cast<int>(status);
  if (code > -1000) return detail::cl_error_name(code);
  switch (status) {
    case StatusCode::kInvalidDimension:
      return "CLBlast kInvalidDimension";
    case StatusCode::kInvalidLeadDimA:
      return "CLBlast kInvalidLeadDimA";
    case StatusCode::kInvalidLeadDimB:
      return "CLBlast kInvalidLeadDimB";
    case StatusCode::kInvalidLeadDimC:
      return "CLBlast kInvalidLeadDimC";
    case StatusCode::kInsufficientMemoryA:
      return "CLBlast kInsufficientMemoryA (A's buffer is too small)";
    case StatusCode::kInsufficientMemoryB:
      return "CLBlast kInsufficientMemoryB (B's buffer is too small)";
    case StatusCode::kInsufficientMemoryC:
      return "CLBlast kInsufficientMemoryC (C's buffer is too small)";
    case StatusCode::kInsufficientMemoryTemp:
      return "CLBlast kInsufficientMemoryTemp";
    case StatusCode::kInvalidLocalMemUsage:
      return "CLBlast kInvalidLocalMemUsage (not enough local memory)";
    case StatusCode::kDatabaseError:
      return "CLBlast kDatabaseError (no parameters for this device)";
    default:
      return "CLBlast status " + std::to_string(code);
  }
}

// "[m x k] x [k x n]", naming a failed GEMM. Appended piece by piece: GCC 12 reports a false
// -Wrestrict on "literal" + std::string chains here.
std::string shape(int64_t m, int64_t n, int64_t k) {
  std::string text = "[";
  text += std::to_string(m);
  text += " x ";
  text += std::to_string(k);
  text += "] x [";
  text += std::to_string(k);
  text += " x ";
  text += std::to_string(n);
  text += "]";
  return text;
}

}  // namespace

bool Device::Impl::warm_up_clblast(std::string* message) {
  // One tiny GEMM per routine compiles CLBlast's programs for this context. A, B and C are all
  // one zeroed 8 x 8 matrix: the product of zeros is zeros, so the overlap is harmless.
  constexpr std::size_t kSide = 8;
  constexpr std::size_t kBytes = kSide * kSide * sizeof(float);
  cl_int status = CL_SUCCESS;
  const cl_mem zeros = clCreateBuffer(context, CL_MEM_READ_WRITE, kBytes, nullptr, &status);
  if (status != CL_SUCCESS) {
    report(message, "clCreateBuffer(GEMM warm-up): " + detail::cl_error_name(status));
    return false;
  }
  const float zero = 0.0f;
  status = clEnqueueFillBuffer(queue, zeros, &zero, sizeof zero, 0, kBytes, 0, nullptr, nullptr);
  StatusCode gemm = StatusCode::kSuccess;
  StatusCode batched = StatusCode::kSuccess;
  if (status == CL_SUCCESS) {
    const auto no = clblast::Transpose::kNo;
    gemm = clblast::Gemm<float>(kRowMajor, no, no, kSide, kSide, kSide, 1.0f, zeros, 0, kSide,
                                zeros, 0, kSide, 0.0f, zeros, 0, kSide, &queue);
    // C strides by a whole matrix: CLBlast refuses a C stride of 0, even for a batch of one.
    batched = clblast::GemmStridedBatched<float>(kRowMajor, no, no, kSide, kSide, kSide, 1.0f,
                                                 zeros, 0, kSide, 0, zeros, 0, kSide, 0, 0.0f,
                                                 zeros, 0, kSide, kSide * kSide, 1, &queue);
    status = clFinish(queue);
  }
  clReleaseMemObject(zeros);
  if (status != CL_SUCCESS) {
    report(message, "warming up CLBlast: OpenCL: " + detail::cl_error_name(status));
  } else if (gemm != StatusCode::kSuccess) {
    report(message, "warming up CLBlast: clblast::Gemm: " + clblast_error(gemm));
  } else if (batched != StatusCode::kSuccess) {
    report(message, "warming up CLBlast: clblast::GemmStridedBatched: " + clblast_error(batched));
  } else {
    return true;
  }
  return false;
}

void Device::gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, Mem a,
                  int64_t lda, Mem b, int64_t ldb, float beta, Mem c, int64_t ldc) {
  static constexpr const char* kCall = "Device::gemm";
  Impl& d = *impl_;
  if (m < 0 || n < 0 || k < 0 || lda < 0 || ldb < 0 || ldc < 0) {
    return d.fail(std::string(kCall) + " " + shape(m, n, k) + ": a negative size");
  }
  if (m == 0 || n == 0) return;
  if (k == 0) return d.scale_matrices(kCall, c, ldc, 0, m, n, 1, beta);  // CLBlast refuses k = 0
  const auto a_offset = d.element_offset(a, sizeof(float), kCall);
  const auto b_offset = d.element_offset(b, sizeof(float), kCall);
  const auto c_offset = d.element_offset(c, sizeof(float), kCall);
  if (!a_offset || !b_offset || !c_offset) return;
  const auto run = [&](cl_mem temp) {
    return clblast::Gemm<float>(
        kRowMajor, transpose(trans_a), transpose(trans_b), static_cast<std::size_t>(m),
        static_cast<std::size_t>(n), static_cast<std::size_t>(k), alpha, a.buffer,
        static_cast<std::size_t>(*a_offset), static_cast<std::size_t>(lda), b.buffer,
        static_cast<std::size_t>(*b_offset), static_cast<std::size_t>(ldb), beta, c.buffer,
        static_cast<std::size_t>(*c_offset), static_cast<std::size_t>(ldc), &d.queue, nullptr,
        temp);
  };
  StatusCode status = run(d.gemm_temp);
  // A shape reserve_gemm never saw may need more than the buffer holds. CLBlast checks that
  // before it enqueues anything, so running again with a buffer of its own is safe.
  if (status == StatusCode::kInsufficientMemoryTemp) status = run(nullptr);
  if (status != StatusCode::kSuccess) {
    d.fail(std::string(kCall) + " " + shape(m, n, k) + ": " + clblast_error(status));
  }
}

void Device::gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                          Mem a, int64_t lda, int64_t stride_a, Mem b, int64_t ldb,
                          int64_t stride_b, float beta, Mem c, int64_t ldc, int64_t stride_c,
                          int64_t batch) {
  static constexpr const char* kCall = "Device::gemm_batched";
  Impl& d = *impl_;
  if (m < 0 || n < 0 || k < 0 || lda < 0 || ldb < 0 || ldc < 0 || stride_a < 0 || stride_b < 0 ||
      stride_c < 0 || batch < 0) {
    return d.fail(std::string(kCall) + " " + shape(m, n, k) + ": a negative size or stride");
  }
  if (m == 0 || n == 0 || batch == 0) return;
  if (k == 0) return d.scale_matrices(kCall, c, ldc, stride_c, m, n, batch, beta);
  // One GEMM is gemm()'s, with the reserved buffer (and CLBlast refuses a C stride of 0 even
  // then). More than one writing the same C (stride_c 0) is refused by CLBlast: kInvalidDimension.
  if (batch == 1) return gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  const auto a_offset = d.element_offset(a, sizeof(float), kCall);
  const auto b_offset = d.element_offset(b, sizeof(float), kCall);
  const auto c_offset = d.element_offset(c, sizeof(float), kCall);
  if (!a_offset || !b_offset || !c_offset) return;
  const StatusCode status = clblast::GemmStridedBatched<float>(
      kRowMajor, transpose(trans_a), transpose(trans_b), static_cast<std::size_t>(m),
      static_cast<std::size_t>(n), static_cast<std::size_t>(k), alpha, a.buffer,
      static_cast<std::size_t>(*a_offset), static_cast<std::size_t>(lda),
      static_cast<std::size_t>(stride_a), b.buffer, static_cast<std::size_t>(*b_offset),
      static_cast<std::size_t>(ldb), static_cast<std::size_t>(stride_b), beta, c.buffer,
      static_cast<std::size_t>(*c_offset), static_cast<std::size_t>(ldc),
      static_cast<std::size_t>(stride_c), static_cast<std::size_t>(batch), &d.queue);
  if (status != StatusCode::kSuccess) {
    d.fail(std::string(kCall) + " " + std::to_string(batch) + " x " + shape(m, n, k) + ": " +
           clblast_error(status));
  }
}

bool Device::reserve_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, int64_t lda,
                          int64_t ldb, int64_t ldc, std::string* error) {
  Impl& d = *impl_;
  const auto refuse = [&](const std::string& why) {
    if (error != nullptr) *error = "GEMM " + shape(m, n, k) + ": " + why;
    return false;
  };
  if (m < 0 || n < 0 || k < 0) return refuse("a negative size");
  if (m == 0 || n == 0 || k == 0) return true;  // nothing runs on CLBlast
  // Row-major: A is [m, k] (stored [k, m] when transposed), B is [k, n] (or [n, k]), C is [m, n].
  const int64_t a_rows = trans_a ? k : m, a_cols = trans_a ? m : k;
  const int64_t b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
  if (lda < a_cols || ldb < b_cols || ldc < n) {
    return refuse("leading dimensions " + std::to_string(lda) + ", " + std::to_string(ldb) + ", " +
                  std::to_string(ldc) + " are below the rows' lengths " + std::to_string(a_cols) +
                  ", " + std::to_string(b_cols) + ", " + std::to_string(n));
  }
  const detail::GemmShape key = {trans_a, trans_b, m, n, k, lda, ldb, ldc};
  if (d.reserved_gemms.contains(key)) return true;

  // Offsets of 1 ask for the most: CLBlast copies every operand that is not at offset 0.
  std::size_t temp_bytes = 0;
  StatusCode status = clblast::GemmTempBufferSize<float>(
      kRowMajor, transpose(trans_a), transpose(trans_b), static_cast<std::size_t>(m),
      static_cast<std::size_t>(n), static_cast<std::size_t>(k), 1, static_cast<std::size_t>(lda), 1,
      static_cast<std::size_t>(ldb), 1, static_cast<std::size_t>(ldc), &d.queue, temp_bytes);
  if (status != StatusCode::kSuccess) {
    return refuse("clblast::GemmTempBufferSize: " + clblast_error(status));
  }
  if (temp_bytes > d.gemm_temp_bytes) {
    cl_int created = CL_SUCCESS;
    const cl_mem temp = clCreateBuffer(d.context, CL_MEM_READ_WRITE, temp_bytes, nullptr, &created);
    if (created != CL_SUCCESS) {
      return refuse("clCreateBuffer(" + std::to_string(temp_bytes) +
                    " bytes for CLBlast): " + detail::cl_error_name(created));
    }
    // GEMMs already enqueued keep the old buffer alive until they have run.
    if (d.gemm_temp != nullptr) clReleaseMemObject(d.gemm_temp);
    d.gemm_temp = temp;
    d.gemm_temp_bytes = temp_bytes;
  }

  // Runs the shape once, plain and batched, on scratch operands (whatever they hold): that
  // proves CLBlast takes it, and gives drivers that specialise kernels per launch shape (PoCL
  // does) the chance to do so now rather than during a request.
  std::string why;
  Buffer a = alloc(static_cast<std::size_t>(a_rows * lda) * sizeof(float), &why);
  Buffer b = a.get() != nullptr
                 ? alloc(static_cast<std::size_t>(b_rows * ldb) * sizeof(float), &why)
                 : Buffer();
  Buffer c = b.get() != nullptr ? alloc(static_cast<std::size_t>(m * ldc) * sizeof(float), &why)
                                : Buffer();
  if (c.get() == nullptr) return refuse(why);
  status = clblast::Gemm<float>(
      kRowMajor, transpose(trans_a), transpose(trans_b), static_cast<std::size_t>(m),
      static_cast<std::size_t>(n), static_cast<std::size_t>(k), 1.0f, a.get(), 0,
      static_cast<std::size_t>(lda), b.get(), 0, static_cast<std::size_t>(ldb), 0.0f, c.get(), 0,
      static_cast<std::size_t>(ldc), &d.queue, nullptr, d.gemm_temp);
  if (status != StatusCode::kSuccess) return refuse("clblast::Gemm: " + clblast_error(status));
  status = clblast::GemmStridedBatched<float>(
      kRowMajor, transpose(trans_a), transpose(trans_b), static_cast<std::size_t>(m),
      static_cast<std::size_t>(n), static_cast<std::size_t>(k), 1.0f, a.get(), 0,
      static_cast<std::size_t>(lda), 0, b.get(), 0, static_cast<std::size_t>(ldb), 0, 0.0f, c.get(),
      0, static_cast<std::size_t>(ldc), static_cast<std::size_t>(m * ldc), 1, &d.queue);
  if (status != StatusCode::kSuccess) {
    return refuse("clblast::GemmStridedBatched: " + clblast_error(status));
  }
  if (const cl_int finished = clFinish(d.queue); finished != CL_SUCCESS) {
    return refuse("clFinish: " + detail::cl_error_name(finished));
  }
  d.reserved_gemms.insert(key);
  return true;
}

}  // namespace coproc::kernels::opencl
