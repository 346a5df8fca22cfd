// What a Plan holds: kernel calls with every tensor's location resolved for one set of input
// shapes. Internal to the runtime.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "common/result.h"
#include "coproc/kernels/cpu.h"
#include "runtime/graph.h"
#include "runtime/model.h"

namespace coproc::runtime::detail {

// Scratch tensors start on cache-line boundaries.
inline constexpr std::size_t kScratchAlignment = 64;

// Where a tensor's bytes are during a run.
struct Ref {
  enum class Loc : uint8_t { kInput, kOutput, kWeight, kScratch };
  Loc loc = Loc::kScratch;
  uint32_t index = 0;             // kInput / kOutput: the caller's buffer
  std::size_t offset = 0;         // kScratch: bytes from the Session's scratch base
  const float* weight = nullptr;  // kWeight: the Model's data (the Session keeps the Model alive)
};

struct GemmCall {
  bool trans_a = false;
  bool trans_b = false;
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  int64_t lda = 1;
  int64_t ldb = 1;
  float alpha = 1.0f;
  float beta = 0.0f;
  bool copy_c = false;  // broadcast C into the output first; beta then scales it in the GEMM
  // B packed at load (the Model's, kept alive by the Session): gemm_packed instead of OpenBLAS,
  // with bias (n floats, or nullptr) added to every row.
  const kernels::cpu::PackedB* packed = nullptr;
  const float* bias = nullptr;
};

struct SoftmaxCall {
  int64_t outer = 0;
  int64_t n = 0;
  int64_t inner = 0;
};

// One kernel call. View operators (Identity, Flatten, Reshape) make none.
struct Step {
  OpKind op = OpKind::kIdentity;
  Ref out;
  std::array<Ref, 3> in{};
  int64_t elements = 0;               // of the output
  GemmCall gemm;                      // Gemm, MatMul
  SoftmaxCall softmax;                // Softmax
  kernels::cpu::Broadcast broadcast;  // Add/Sub/Mul/Div: a op b; Gemm: C to [m, n]
};

// A graph output whose bytes live elsewhere (an input, a weight, another output): copied last.
struct OutputCopy {
  Ref src;
  uint32_t output = 0;
  std::size_t bytes = 0;
};

class Planner {
 public:
  static Result<std::unique_ptr<Plan>> build(const Model& model,
                                             std::span<const Shape> input_shapes);
};

}  // namespace coproc::runtime::detail
