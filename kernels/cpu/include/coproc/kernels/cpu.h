// CPU kernels: plain functions over raw float32 pointers and sizes. They know nothing of the daemon
// or of ONNX; daemon/runtime lowers a model to calls of these.
//
// Contract shared by every kernel here:
//  - Tensors are dense and row-major unless a leading dimension says otherwise.
//  - Preconditions (sizes, ranks, non-null pointers for non-empty tensors) are the caller's job and
//    are checked with assert() only; a violated precondition is a programmer error.
//  - No kernel allocates: broadcasting layouts are computed once into a fixed-size value
//    (Broadcast) and the hot loops read it.
//  - No kernel indexes memory by the VALUES of its inputs, only by the sizes given. Inputs may live
//    in another process's shared memory and change while we read them; the worst that can happen
//    is a garbage result, never an out-of-bounds access.
//  - Every function may be called from several threads at once on disjoint outputs. GEMM runs on
//    OpenBLAS's thread pool (see set_threads); everything else runs on the calling thread.
#pragma once

#include <cstdint>
#include <span>

namespace coproc::kernels::cpu {

// ---------------------------------------------------------------- threads

// The number of threads OpenBLAS uses for one GEMM. OpenBLAS's pthread workers busy-wait between
// calls, so on a small machine extra workers steal the cores the daemon's poller and the clients
// need: the default is 1 thread on machines with at most kSmallMachineCores cores and half the
// cores otherwise. The setting is process-wide.
inline constexpr int kSmallMachineCores = 4;
int default_threads();
void set_threads(int n);
int threads();

// ---------------------------------------------------------------- GEMM

// C = alpha * op(A) * op(B) + beta * C, all row-major. op(A) is [m, k]: A is stored [m, k] with
// row stride lda, or [k, m] when trans_a. op(B) is [k, n]: B is stored [k, n] with row stride ldb,
// or [n, k] when trans_b. C is [m, n] with row stride ldc and must not overlap A or B. With
// beta == 0, C is write-only (garbage, even NaN, in C is ignored). Products of a few rows (batch
// 1 to 4) run as one GEMV per row, which is faster than GEMM there (see blas.cc).
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// ---------------------------------------------------------------- broadcasting binary ops

inline constexpr int kMaxRank = 8;

enum class BinaryOp : uint8_t { kAdd, kSub, kMul, kDiv };

// How two operands broadcast (numpy rules) to one output, computed once per pair of shapes.
// Dimensions of size 1 are dropped and adjacent dimensions that are contiguous in both operands
// are merged, so the loops run over the fewest, longest rows; the common cases get their own
// kinds.
struct Broadcast {
  enum class Kind : uint8_t {
    kSame,     // both operands have the output's shape (or both are one element)
    kScalarA,  // a is one element
    kScalarB,  // b is one element
    kRowA,     // out is [rows, cols]; a is one row of cols, repeated
    kRowB,     // out is [rows, cols]; b is one row of cols (a bias), repeated
    kStrided,  // anything else: strides over up to kMaxRank merged dimensions
  };
  Kind kind = Kind::kSame;
  int64_t elements = 0;  // of the output
  int64_t rows = 0;      // kRowA / kRowB
  int64_t cols = 0;      // kRowA / kRowB
  // The output shape in full, as numpy would report it.
  int out_rank = 0;
  int64_t out_dims[kMaxRank] = {};
  // kStrided: the merged dimensions and each operand's stride in elements (0 = broadcast).
  int rank = 0;
  int64_t dims[kMaxRank] = {};
  int64_t a_strides[kMaxRank] = {};
  int64_t b_strides[kMaxRank] = {};
};

// Fills *out for operands of shapes a_dims and b_dims (each of rank <= kMaxRank). Returns false
// when the shapes do not broadcast.
bool make_broadcast(std::span<const int64_t> a_dims, std::span<const int64_t> b_dims,
                    Broadcast* out);

// out = a op b over the layout. out may be the same buffer as a (or b) when that operand has the
// output's full shape; it must not overlap them otherwise.
void binary(BinaryOp op, const float* a, const float* b, float* out, const Broadcast& layout);

// Convenience for tests and cold paths: makes the layout on the stack, then runs binary().
// Returns false (and writes nothing) when the shapes do not broadcast.
bool binary(BinaryOp op, const float* a, std::span<const int64_t> a_dims, const float* b,
            std::span<const int64_t> b_dims, float* out);

// out = src broadcast to the output of layout, which must be make_broadcast(src_dims, out_dims)
// with layout.out_dims == out_dims (unidirectional broadcasting, as Gemm's C uses). out must not
// overlap src.
void broadcast_copy(const float* src, float* out, const Broadcast& layout);

// ---------------------------------------------------------------- unary ops

// y[i] = f(x[i]) for i < n. y may be the same buffer as x. Sigmoid and tanh use a vectorisable
// exp (Cephes polynomial, about 2 ulp); sigmoid never overflows: it evaluates exp(-|x|) only.
void relu(const float* x, float* y, int64_t n);
void sigmoid(const float* x, float* y, int64_t n);
void tanh(const float* x, float* y, int64_t n);

// ---------------------------------------------------------------- softmax

// Softmax of each row of a [rows, cols] matrix, numerically stable (the row maximum is
// subtracted before exp). y may be the same buffer as x.
void softmax(const float* x, float* y, int64_t rows, int64_t cols);

// Softmax along the middle axis of an [outer, n, inner] tensor: for every (o, i), over
// x[o, 0..n, i]. inner == 1 is softmax(). y may be the same buffer as x.
void softmax_strided(const float* x, float* y, int64_t outer, int64_t n, int64_t inner);

}  // namespace coproc::kernels::cpu
