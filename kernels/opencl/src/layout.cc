#include "layout.h"

#include <cstddef>

namespace coproc::kernels::opencl::detail {

Box simplify(int rank, const int64_t* dims, std::initializer_list<const int64_t*> strides) {
  Box box;
  for (int d = 0; d < rank; ++d) {
    if (dims[d] == 1) continue;
    // Merges d into the last kept dim when every operand steps over that dim exactly as it
    // steps over d's whole length.
    bool merge = box.rank > 0;
    int k = 0;
    for (const int64_t* s : strides) {
      merge = merge && box.strides[k][box.rank - 1] == s[d] * dims[d];
      ++k;
    }
    const int at = merge ? box.rank - 1 : box.rank++;
    box.dims[at] = merge ? box.dims[at] * dims[d] : dims[d];
    k = 0;
    for (const int64_t* s : strides) box.strides[k++][at] = s[d];
  }
  return box;
}

int64_t product(const int64_t* dims, int rank) {
  int64_t p = 1;
  for (int d = 0; d < rank; ++d) p *= dims[d];
  return p;
}

cl_long8 long8(const int64_t (&values)[kMaxRank]) {
  cl_long8 v;
  for (std::size_t i = 0; i < kMaxRank; ++i) v.s[i] = values[i];
  return v;
}

}  // namespace coproc::kernels::opencl::detail
