// GEMM on OpenBLAS, and the process-wide OpenBLAS thread count.
#include <cblas.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>
#include <thread>

#include "coproc/kernels/cpu.h"

namespace coproc::kernels::cpu {

int default_threads() {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return cores <= kSmallMachineCores ? 1 : cores / 2;
}

void set_threads(int n) {
  assert(n >= 1);
  openblas_set_num_threads(n);
}

int threads() { return openblas_get_num_threads(); }

namespace {

// Up to this many rows, one GEMV per row beats GEMM: OpenBLAS's GEMM packs all of B on every call,
// which costs more than streaming B once per row when there are few rows. Measured on the
// 256-1024-1024-16 MLP (OpenBLAS 0.3.21, Haswell kernels, 1 thread): GEMM took 385 / 535 / 328 /
// 429 us at 2 / 3 / 4 / 8 rows against 62 us per row for GEMV.
constexpr int64_t kGemvMaxRows = 4;

// CBLAS takes int sizes.
int blas_int(int64_t v) {
  assert(v >= 0 && v <= std::numeric_limits<int>::max());
  return static_cast<int>(v);
}

// C = beta * C for the degenerate k == 0 product, which BLAS implementations disagree on.
void scale_rows(float beta, float* c, int64_t m, int64_t n, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    if (beta == 0.0f) {
      std::fill(row, row + n, 0.0f);
    } else {
      for (int64_t j = 0; j < n; ++j) row[j] *= beta;
    }
  }
}

// y[n] = alpha * op(B)^T x + beta * y for one row x of op(A), with stride incx.
void gemv_row(bool trans_b, int64_t n, int64_t k, float alpha, const float* x, int64_t incx,
              const float* b, int64_t ldb, float beta, float* y) {
  // OpenBLAS's GEMV scales y by beta with SCAL, which in some releases keeps NaN * 0 = NaN:
  // clear y ourselves so that beta == 0 really means write-only.
  if (beta == 0.0f) std::memset(y, 0, static_cast<std::size_t>(n) * sizeof(float));
  if (trans_b) {  // B is [n, k]: y = B x
    cblas_sgemv(CblasRowMajor, CblasNoTrans, blas_int(n), blas_int(k), alpha, b, blas_int(ldb), x,
                blas_int(incx), beta, y, 1);
  } else {  // B is [k, n]: y = B^T x
    cblas_sgemv(CblasRowMajor, CblasTrans, blas_int(k), blas_int(n), alpha, b, blas_int(ldb), x,
                blas_int(incx), beta, y, 1);
  }
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  assert(m >= 0 && n >= 0 && k >= 0);
  assert(lda >= std::max<int64_t>(1, trans_a ? m : k));
  assert(ldb >= std::max<int64_t>(1, trans_b ? k : n));
  assert(ldc >= std::max<int64_t>(1, n));
  if (m == 0 || n == 0) return;
  if (k == 0) {
    scale_rows(beta, c, m, n, ldc);
    return;
  }
  if (m <= kGemvMaxRows) {
    for (int64_t i = 0; i < m; ++i) {
      // Row i of op(A) is contiguous, or a column of stride lda when A is stored [k, m].
      gemv_row(trans_b, n, k, alpha, trans_a ? a + i : a + i * lda, trans_a ? lda : 1, b, ldb, beta,
               c + i * ldc);
    }
    return;
  }
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, blas_int(m), blas_int(n), blas_int(k), alpha, a,
              blas_int(lda), b, blas_int(ldb), beta, c, blas_int(ldc));
}

}  // namespace coproc::kernels::cpu
