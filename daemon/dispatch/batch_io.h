// Gathering the inputs of a batch once and scattering its outputs once,
// straight between the clients' arenas and one staging buffer per tensor.
//
// Layout rules (docs/models.md, "Batching and scheduling"): dim 0 of every input and output
// is the batch dim. A model may have one variable-length dim, at dim 1 of the
// inputs whose dim 1 is dynamic; requests are padded with zeros along it to
// the batch's padded length, and every output whose dim 1 is dynamic is
// cropped back to each request's own length. Anything else must match
// exactly between the requests of one batch (the scheduler keys batches by
// length, and the shape check in ingest/request.cc rejects the rest).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "coproc/runtime/model.h"
#include "ingest/request.h"

namespace coproc::daemon {

// The shape of input/output `spec`-shaped tensor `request_shape` in a batch of
// `rows` rows padded to `padded_length` (when `variable_dim1`).
runtime::Shape batched_shape(const runtime::Shape& request_shape, int64_t rows, bool variable_dim1,
                             int64_t padded_length);

// Copies input `i` of every item into `dst` (laid out as batched_shape(...)),
// zero-padding dim 1 to padded_length where variable_dim1.
void gather_input(std::span<WorkItem* const> items, uint32_t i, bool variable_dim1,
                  int64_t padded_length, std::size_t element_bytes, std::byte* dst);

// The shape of output `j` for one item, cut from the batch output shape.
runtime::Shape item_output_shape(const runtime::Shape& batch_shape, int64_t rows,
                                 bool variable_dim1, int64_t length);

// Copies `item`'s rows [row_offset, row_offset + rows) of batch output `src`
// (shape batch_shape) into its arena, cropping dim 1 to `length` where
// variable_dim1. The caller checked the capacity.
void scatter_output(const std::byte* src, const runtime::Shape& batch_shape, int64_t row_offset,
                    int64_t rows, bool variable_dim1, int64_t length, std::size_t element_bytes,
                    std::byte* dst);

}  // namespace coproc::daemon
