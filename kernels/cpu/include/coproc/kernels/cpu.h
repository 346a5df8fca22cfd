// CPU kernels: plain functions over raw float32 pointers and sizes. They know nothing of the daemon
// or of ONNX; runtime/ lowers a model to calls of these.
//
// Contract shared by every kernel here:
//  - Tensors are dense and row-major unless a leading dimension says otherwise.
//  - Preconditions (sizes, ranks, non-null pointers for non-empty tensors) are the caller's job and
//    are checked with assert() only; a violated precondition is a programmer error.
//  - No kernel allocates: broadcasting layouts are computed once into a fixed-size value
//    (Broadcast) and the hot loops read it. (PackedB::pack, a load-time step, allocates.)
//  - No kernel indexes memory by the VALUES of its inputs, only by the sizes given. Inputs may live
//    in another process's shared memory and change while we read them; the worst that can happen
//    is a garbage result, never an out-of-bounds access.
//  - Every function may be called from several threads at once on disjoint outputs. GEMM runs on
//    OpenBLAS's thread pool (see set_threads); everything else, gemm_packed included, runs on the
//    calling thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
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

// ---------------------------------------------------------------- GEMM on packed weights

// For a product whose B is a constant weight: B is packed ONCE (at model load) into column panels
// of nr floats, [ceil(n / nr)][k][nr], zero-padded past column n, so that the micro-kernel streams
// each panel contiguously and no GEMM call repacks it (OpenBLAS repacks B on every call, which
// dominates for the few-row products of a batch of requests). Loop order: for up to kMaxBlockRows
// rows of A, every panel of B is read from memory once per call, whatever the row count.
// gemm_packed runs on the calling thread (no OpenBLAS pool).

// The micro-kernel variants, widest first. A PackedB is laid out for one variant (its nr).
enum class GemmKernel : uint8_t {
  kAvx512,    // up to 8 x 32 tiles in zmm registers (AVX-512F + FMA)
  kAvx2,      // up to 6 x 16 tiles in ymm registers (AVX2 + FMA)
  kPortable,  // up to 2 x 16 tiles in SSE2 registers (GCC/Clang vectors): any x86-64
};
inline constexpr GemmKernel kAllGemmKernels[] = {GemmKernel::kAvx512, GemmKernel::kAvx2,
                                                 GemmKernel::kPortable};
const char* gemm_kernel_name(GemmKernel kernel);  // "avx512", "avx2", "portable"
bool gemm_kernel_supported(GemmKernel kernel);    // by this CPU (and OS)
GemmKernel best_gemm_kernel();                    // the widest supported one

// Rows of A per block: up to this many rows read each panel of B once per call; more rows read
// it once per block.
inline constexpr int64_t kMaxBlockRows = 128;

// B packed for gemm_packed: owns 64-byte aligned storage. Immutable after pack(), so one PackedB
// may serve any number of threads at once. Movable, not copyable.
class PackedB {
 public:
  // B is dense row-major: [k, n], or [n, k] when trans_b (then op(B) = B^T is what is packed).
  // kernel must be supported. Allocates (the one call here that does): throws std::bad_alloc
  // when out of memory, like any container.
  static PackedB pack(const float* b, int64_t k, int64_t n, bool trans_b,
                      GemmKernel kernel = best_gemm_kernel());

  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  GemmKernel kernel() const { return kernel_; }
  int64_t panel_width() const { return nr_; }  // nr, in floats
  std::size_t bytes() const;                   // of the packed storage, padding included
  const float* data() const { return data_.get(); }

 private:
  struct AlignedDelete {
    void operator()(float* p) const;
  };
  int64_t k_ = 0;
  int64_t n_ = 0;
  int64_t nr_ = 0;
  GemmKernel kernel_ = GemmKernel::kPortable;
  std::unique_ptr<float, AlignedDelete> data_;
};

// C = alpha * A * B + beta * C (+ bias[j] added to every row, when bias is not null). A is [m, k]
// row-major with row stride lda; C is [m, n] with row stride ldc and must not overlap A, B or
// bias; bias has n floats. With beta == 0, C is write-only (garbage, even NaN, in C is ignored).
// Only C's [m, n] elements are written, never the padding between rows. Runs b's kernel variant.
void gemm_packed(int64_t m, const float* a, int64_t lda, const PackedB& b, float* c, int64_t ldc,
                 float alpha, float beta, const float* bias = nullptr);

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

// ---------------------------------------------------------------- fused operators

// The kernels behind the runtime's fused operators (runtime/ops/fused.cc), each doing in
// one pass what a chain of the kernels above would do in several.

// Exact (erf) GELU: y[i] = 0.5 x (1 + erf(x / sqrt 2)) with x = x[i]. erf is a branchless
// rational approximation (max abs error 4.2e-7 over all floats, against 0.6e-7 for rounding alone),
// so the loop vectorises; y is within 1.4e-6 * max(1, |x|) of the exact GELU. y may be x.
void gelu(const float* x, float* y, int64_t n);

// An activation applied in place after a GEMM, while its rows are still in cache.
enum class Activation : uint8_t { kNone, kRelu, kGelu, kTanh, kSigmoid };
void activate(Activation activation, float* y, int64_t n);

// One head of scaled dot-product attention: out = softmax(scale * Q K^T + mask) V, the softmax
// along each row. Q is [q_rows, head_dim] with row stride ldq; K is [kv_rows, head_dim] with row
// stride ldk, or when k_transposed K^T is given instead, [head_dim, kv_rows] with row stride ldk;
// V is [kv_rows, value_dim] with row stride ldv; out is [q_rows, value_dim] with row stride ldo and
// must not overlap the others. mask (may be null) is read at mask[i * mask_row_stride + j *
// mask_col_stride] for score (i, j): a stride of 0 broadcasts it. scores is scratch the caller
// owns, q_rows * kv_rows floats: the one head's score matrix, which never has to exist for all
// heads at once. The two products run on OpenBLAS (gemm above).
struct AttentionHead {
  int64_t q_rows = 0;
  int64_t kv_rows = 0;
  int64_t head_dim = 0;
  int64_t value_dim = 0;
  int64_t ldq = 0, ldk = 0, ldv = 0, ldo = 0;
  bool k_transposed = false;
  float scale = 1.0f;
  int64_t mask_row_stride = 0;
  int64_t mask_col_stride = 0;
};
void attention_head(const AttentionHead& head, const float* q, const float* k, const float* v,
                    const float* mask, float* scores, float* out);

// ---------------------------------------------------------------- math functions

// y[i] = f(x[i]) for i < n. y may be the same buffer as x.
// erf: relative error at most 1.05e-7 (1.5 ulp) wherever erf(x) is a normal float, checked over
// every float against double erf; odd, +-1 at +-inf, NaN propagates. Branchless, so the loop
// vectorises; runs AVX2 code where the CPU has it (same results as the SSE2 code).
void erf(const float* x, float* y, int64_t n);
// exp over the whole float range (about 2 ulp; 4 past |x| = 87): +inf above ~88.72, subnormal
// results below ~-87.3, 0 below ~-103.97.
void exp(const float* x, float* y, int64_t n);
void sqrt(const float* x, float* y, int64_t n);  // IEEE: NaN below 0, -0 for -0
void neg(const float* x, float* y, int64_t n);
void reciprocal(const float* x, float* y, int64_t n);  // IEEE 1 / x: +-inf at +-0

// ---------------------------------------------------------------- reductions

// f(v) is v for kSum and kMax, v * v for kSumSquare; values combine by + (the sums) or by a max
// that propagates NaN (numpy's maximum). Row sums add blocks of up to 256 values in float and
// the block sums in double; column sums accumulate in double. Their error does not grow with
// the reduction's length.
enum class ReduceOp : uint8_t { kSum, kSumSquare, kMax };
// The value to start a reduction from: -0.0f for the sums (-0 + v == v for every v, -0
// included), -inf for kMax.
float reduce_identity(ReduceOp op);
// x is [rows, n]: y[r] = y[r] combined with f(x[r, j]) for every j < n, for each r < rows.
void reduce_rows(ReduceOp op, const float* x, int64_t rows, int64_t n, float* y);
// x is [n, cols]: y[c] = y[c] combined with f(x[j, c]) for every j < n, for each c < cols.
void reduce_cols(ReduceOp op, const float* x, int64_t n, int64_t cols, float* y);

// ---------------------------------------------------------------- layer normalization

// Each row of x [rows, n]: y = (x - mean) / sqrt(var + epsilon) * scale + bias, with the row's
// mean and biased variance. scale and bias hold n floats, or are null (1 and 0). mean and
// inv_std_dev (rows floats each, or null) receive each row's mean and 1 / sqrt(var + epsilon).
// The mean and variance are two passes in double, so a large offset costs no precision (see
// layer_norm.cc). y may be the same buffer as x, not scale or bias.
void layer_norm(const float* x, int64_t rows, int64_t n, const float* scale, const float* bias,
                float epsilon, float* y, float* mean, float* inv_std_dev);

}  // namespace coproc::kernels::cpu
