#include "dispatch/batch_io.h"

#include <cstring>

namespace coproc::daemon {

namespace {
// Elements after dim `from` (the size of one step along dim from - 1).
int64_t inner_elements(const runtime::Shape& s, int from) {
  int64_t n = 1;
  for (int d = from; d < s.rank; ++d) n *= s.dims[d];
  return n;
}
}  // namespace

runtime::Shape batched_shape(const runtime::Shape& request_shape, int64_t rows, bool variable_dim1,
                             int64_t padded_length) {
  runtime::Shape s = request_shape;
  if (s.rank > 0) s.dims[0] = rows;
  if (variable_dim1 && s.rank > 1) s.dims[1] = padded_length;
  return s;
}

void gather_input(std::span<WorkItem* const> items, uint32_t i, bool variable_dim1,
                  int64_t padded_length, std::size_t element_bytes, std::byte* dst) {
  for (WorkItem* item : items) {
    const runtime::Shape& shape = item->input_shapes[i];
    const auto* src = static_cast<const std::byte*>(item->inputs[i]);
    if (!variable_dim1 || shape.rank < 2 || shape.dims[1] == padded_length) {
      std::size_t bytes = static_cast<std::size_t>(shape.elements()) * element_bytes;
      std::memcpy(dst, src, bytes);
      dst += bytes;
      continue;
    }
    // [rows, length, inner...] -> [rows, padded_length, inner...], zeros after length.
    const std::size_t step = static_cast<std::size_t>(inner_elements(shape, 2)) * element_bytes;
    const std::size_t used = static_cast<std::size_t>(shape.dims[1]) * step;
    const std::size_t padded = static_cast<std::size_t>(padded_length) * step;
    for (int64_t r = 0; r < shape.dims[0]; ++r) {
      std::memcpy(dst, src, used);
      std::memset(dst + used, 0, padded - used);
      src += used;
      dst += padded;
    }
  }
}

runtime::Shape item_output_shape(const runtime::Shape& batch_shape, int64_t rows,
                                 bool variable_dim1, int64_t length) {
  runtime::Shape s = batch_shape;
  if (s.rank > 0) s.dims[0] = rows;
  if (variable_dim1 && s.rank > 1) s.dims[1] = length;
  return s;
}

void scatter_output(const std::byte* src, const runtime::Shape& batch_shape, int64_t row_offset,
                    int64_t rows, bool variable_dim1, int64_t length, std::size_t element_bytes,
                    std::byte* dst) {
  const std::size_t row_bytes =
      static_cast<std::size_t>(inner_elements(batch_shape, 1)) * element_bytes;
  src += static_cast<std::size_t>(row_offset) * row_bytes;
  if (!variable_dim1 || batch_shape.rank < 2 || batch_shape.dims[1] == length) {
    std::memcpy(dst, src, static_cast<std::size_t>(rows) * row_bytes);
    return;
  }
  const std::size_t step = static_cast<std::size_t>(inner_elements(batch_shape, 2)) * element_bytes;
  const std::size_t used = static_cast<std::size_t>(length) * step;
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(dst, src, used);
    src += row_bytes;
    dst += used;
  }
}

}  // namespace coproc::daemon
