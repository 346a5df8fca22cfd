// Reductions: ReduceSum, ReduceMean, ReduceMax, ArgMax, and LayerNormalization.
#include "runtime/ops.h"

namespace coproc::runtime::detail {

std::span<const OpDef> reduce_ops() { return {}; }

}  // namespace coproc::runtime::detail
