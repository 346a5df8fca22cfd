// Pattern fusion (passes.h: fuse_patterns).
#include "runtime/passes.h"

namespace coproc::runtime::detail {

void fuse_patterns(Graph* graph) { (void)graph; }

}  // namespace coproc::runtime::detail
