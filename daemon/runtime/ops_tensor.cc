// Views and data movement: operators that rearrange or select elements without arithmetic, the
// shape queries (Shape, Size, ConstantOfShape) and Cast.
//
// Data movement (Transpose, Slice, Concat, Expand, Gather) works on element SIZE, not type: one
// kernel moves float32, int64, int32 and bool alike. Transpose, Slice, Concat and Expand are each
// one or more StridedCopy, whose dims are merged in plan() so that the innermost contiguous run
// moves with one memcpy.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/onnx_tensor.h"
#include "runtime/ops.h"

namespace coproc::runtime::detail {
namespace {

// Squeeze and Unsqueeze took axes as an attribute before opset 13, as an input since.
constexpr int64_t kAxesAsInputOpset = 13;
// Slice took starts, ends and axes as attributes before opset 10; inputs (and steps) since.
constexpr int64_t kSliceInputsOpset = 10;

using Strides = std::array<int64_t, kMaxRank>;

std::size_t at(int64_t d) { return static_cast<std::size_t>(d); }

// Row-major strides of a dense tensor, in elements.
Strides dense_strides(const Shape& s) {
  Strides strides{};
  int64_t stride = 1;
  for (int32_t d = s.rank - 1; d >= 0; --d) {
    strides[at(d)] = stride;
    stride *= s.dims[at(d)];
  }
  return strides;
}

// plan() checks an output shape itself when it builds strides from it: plan_node's check comes
// after, too late for products that could overflow.
Status check_bounded(const PlanContext& ctx, const Shape& s) {
  if (bounded_elements(s.view()) >= 0) return {};
  return ctx.fail(fmt::format("the output {} has a negative dim or more than {} elements",
                              s.to_string(), kMaxTensorElements));
}

// A 1-D operand (a shape, axes, starts), known when planning.
Result<std::vector<int64_t>> vector_operand(const PlanContext& ctx, std::size_t k,
                                            const char* what) {
  if (ctx.input(k).shape.rank != 1) {
    return ctx.fail(fmt::format("{} must be 1-D, not {}", what, ctx.input(k).shape.to_string()));
  }
  return ctx.ints(k);
}

// Normalises axes for a rank: each in [-rank, rank), none twice.
Result<std::vector<int32_t>> normalize_axes(const PlanContext& ctx, std::span<const int64_t> axes,
                                            int32_t rank) {
  std::vector<int32_t> out;
  uint32_t seen = 0;
  for (const int64_t axis : axes) {
    auto a = ctx.axis(axis, rank);
    if (!a) return a.error();
    if ((seen >> a.value() & 1u) != 0) {
      return ctx.fail(fmt::format("axes [{}] name axis {} twice", fmt::join(axes, ", "), *a));
    }
    seen |= 1u << a.value();
    out.push_back(a.value());
  }
  return out;
}

// ---------------------------------------------------------------- views

Result<std::unique_ptr<Kernel>> plan_identity(PlanContext& ctx) {
  ctx.output(0) = ctx.input(0);
  ctx.output(0).value = nullptr;
  return std::unique_ptr<Kernel>();
}

Result<std::unique_ptr<Kernel>> plan_flatten(PlanContext& ctx) {
  const Shape& x = ctx.input(0).shape;
  const int64_t axis = ctx.node.int_attr("axis", 1);
  const int64_t a = axis < 0 ? axis + x.rank : axis;
  if (a < 0 || a > x.rank) {
    return ctx.fail(fmt::format("axis {} is out of range for {}", axis, x.to_string()));
  }
  const auto ai = static_cast<int32_t>(a);
  const int64_t dims[2] = {product(x, 0, ai), product(x, ai, x.rank)};
  ctx.output(0) = {ctx.input(0).dtype, Shape::of(dims)};
  return std::unique_ptr<Kernel>();
}

// ONNX Reshape: 0 copies the input's dim at that index (a literal 0 with allowzero), -1 takes
// whatever is left.
Result<std::unique_ptr<Kernel>> plan_reshape(PlanContext& ctx) {
  const Shape& x = ctx.input(0).shape;
  const std::vector<int64_t> target = ctx.ints(1);
  const bool allowzero = ctx.node.int_attr("allowzero", 0) != 0;
  if (ctx.input(1).shape.rank != 1) return ctx.fail("the shape must be 1-D");
  if (target.size() > static_cast<std::size_t>(kMaxRank)) {
    return ctx.unsupported(fmt::format("target rank {} exceeds {}", target.size(), kMaxRank));
  }
  Shape s;
  s.rank = static_cast<int32_t>(target.size());
  int inferred = -1;
  int64_t known = 1;
  for (int32_t d = 0; d < s.rank; ++d) {
    int64_t dim = target[static_cast<std::size_t>(d)];
    if (dim == 0 && !allowzero) {
      if (d >= x.rank) {
        return ctx.fail(fmt::format("shape [{}] copies dim {} of input {}", fmt::join(target, ", "),
                                    d, x.to_string()));
      }
      dim = x.dims[static_cast<std::size_t>(d)];
    }
    if (dim == -1) {
      if (inferred >= 0) return ctx.fail("more than one -1 in the shape");
      inferred = d;
      continue;
    }
    if (dim < 0 || dim > kMaxTensorElements) {
      return ctx.fail(fmt::format("invalid dim {} in the shape", dim));
    }
    s.dims[static_cast<std::size_t>(d)] = dim;
    known *= dim;
    if (known > kMaxTensorElements) {
      return ctx.fail(fmt::format("the shape [{}] has more than {} elements",
                                  fmt::join(target, ", "), kMaxTensorElements));
    }
  }
  const int64_t total = x.elements();
  if (inferred >= 0) {
    if (known == 0 || total % known != 0) {
      return ctx.fail(
          fmt::format("cannot reshape {} to [{}]", x.to_string(), fmt::join(target, ", ")));
    }
    s.dims[static_cast<std::size_t>(inferred)] = total / known;
  } else if (known != total) {
    return ctx.fail(fmt::format("cannot reshape {} ({} elements) to {} ({} elements)",
                                x.to_string(), total, s.to_string(), known));
  }
  ctx.output(0) = {ctx.input(0).dtype, s};
  return std::unique_ptr<Kernel>();
}

// The axes of a Squeeze or Unsqueeze (the attribute before opset 13, input 1 since), or nullopt
// when the node gives none.
Result<std::optional<std::vector<int64_t>>> axes_of(const PlanContext& ctx) {
  if (ctx.node.opset < kAxesAsInputOpset) {
    const Attribute* a = ctx.node.attribute("axes");
    if (a == nullptr) return std::optional<std::vector<int64_t>>();
    return std::optional(a->ints);
  }
  if (!ctx.has_input(1)) return std::optional<std::vector<int64_t>>();
  auto axes = vector_operand(ctx, 1, "axes");
  if (!axes) return axes.error();
  return std::optional(std::move(axes).value());
}

// Without axes, every dim of 1 goes. Given axes (even none, as ONNX's shape inference reads an
// empty axes tensor) must each name a dim of 1.
Result<std::unique_ptr<Kernel>> plan_squeeze(PlanContext& ctx) {
  const Shape& x = ctx.input(0).shape;
  auto axes = axes_of(ctx);
  if (!axes) return axes.error();
  std::array<bool, kMaxRank> drop{};
  if (axes->has_value()) {
    auto normalized = normalize_axes(ctx, **axes, x.rank);
    if (!normalized) return normalized.error();
    for (const int32_t a : *normalized) {
      if (x.dims[at(a)] != 1) {
        return ctx.fail(
            fmt::format("cannot squeeze axis {} of {}: its dim is not 1", a, x.to_string()));
      }
      drop[at(a)] = true;
    }
  } else {
    for (int32_t d = 0; d < x.rank; ++d) drop[at(d)] = x.dims[at(d)] == 1;
  }
  Shape s;
  for (int32_t d = 0; d < x.rank; ++d) {
    if (!drop[at(d)]) s.dims[at(s.rank++)] = x.dims[at(d)];
  }
  ctx.output(0) = {ctx.input(0).dtype, s};
  return std::unique_ptr<Kernel>();
}

// Axes index the OUTPUT, whose rank is the input's plus the number of axes.
Result<std::unique_ptr<Kernel>> plan_unsqueeze(PlanContext& ctx) {
  const Shape& x = ctx.input(0).shape;
  auto axes = axes_of(ctx);
  if (!axes) return axes.error();
  if (!axes->has_value()) return ctx.fail("axes are required");
  const std::vector<int64_t>& list = **axes;
  const auto rank = static_cast<int64_t>(x.rank) + static_cast<int64_t>(list.size());
  if (rank > kMaxRank) {
    return ctx.unsupported(fmt::format("output rank {} exceeds {}", rank, kMaxRank));
  }
  auto normalized = normalize_axes(ctx, list, static_cast<int32_t>(rank));
  if (!normalized) return normalized.error();
  Shape s;
  s.rank = static_cast<int32_t>(rank);
  for (const int32_t a : *normalized) s.dims[at(a)] = -1;  // a new dim of 1, marked
  int32_t next = 0;
  for (int32_t d = 0; d < s.rank; ++d) {
    s.dims[at(d)] = s.dims[at(d)] == -1 ? 1 : x.dims[at(next++)];
  }
  ctx.output(0) = {ctx.input(0).dtype, s};
  return std::unique_ptr<Kernel>();
}

// ---------------------------------------------------------------- shape queries

// Opset 15's start and end: negative ones count from the back, both clamp to [0, rank].
Result<std::unique_ptr<Kernel>> plan_shape(PlanContext& ctx) {
  const Shape& x = ctx.input(0).shape;
  const auto normalize = [&](int64_t v) {
    if (v < 0) v += x.rank;
    return std::clamp<int64_t>(v, 0, x.rank);
  };
  const int64_t start = normalize(ctx.node.int_attr("start", 0));
  const int64_t end = normalize(ctx.node.int_attr("end", x.rank));
  const int64_t count = std::max<int64_t>(0, end - start);
  Strides dims{};
  std::copy_n(x.dims.begin() + start, count, dims.begin());
  ctx.output(0) = {DType::kInt64, Shape::of(std::array<int64_t, 1>{count})};
  return make_kernel([dims, count](const KernelIO& io) {
    if (count > 0) std::memcpy(io.output<int64_t>(0), dims.data(), at(count) * sizeof(int64_t));
  });
}

Result<std::unique_ptr<Kernel>> plan_size(PlanContext& ctx) {
  const int64_t n = ctx.input(0).shape.elements();
  ctx.output(0) = {DType::kInt64, Shape{}};
  return make_kernel([n](const KernelIO& io) { *io.output<int64_t>(0) = n; });
}

// The output takes `value`'s dtype (one element; float32 0 without it).
Result<std::unique_ptr<Kernel>> plan_constant_of_shape(PlanContext& ctx) {
  auto dims = vector_operand(ctx, 0, "the shape");
  if (!dims) return dims.error();
  if (dims->size() > static_cast<std::size_t>(kMaxRank)) {
    return ctx.unsupported(fmt::format("output rank {} exceeds {}", dims->size(), kMaxRank));
  }
  Shape s = Shape::of(*dims);
  if (Status ok = check_bounded(ctx, s); !ok) return ok.error();
  DType dtype = DType::kFloat32;
  uint64_t pattern = 0;  // the value's bytes, little-endian, in its element size
  if (const Attribute* value = ctx.node.attribute("value"); value != nullptr) {
    if (value->kind != Attribute::Kind::kTensor || value->t.elements() != 1) {
      return ctx.fail("value must be a tensor of one element");
    }
    dtype = value->t.dtype;
    std::memcpy(&pattern, value->t.bytes.data(), value->t.bytes.size());
  }
  ctx.output(0) = {dtype, s};
  const int64_t n = s.elements();
  const std::size_t size = dtype_bytes(dtype);
  return make_kernel([n, size, pattern](const KernelIO& io) {
    const auto fill = [&]<class T>(T* out) {
      T v;
      std::memcpy(&v, &pattern, sizeof v);
      std::fill_n(out, n, v);
    };
    if (n == 0) return;
    if (size == 1) fill(io.output<uint8_t>(0));
    if (size == 4) fill(io.output<uint32_t>(0));
    if (size == 8) fill(io.output<uint64_t>(0));
  });
}

// ---------------------------------------------------------------- strided copies

// Copies an N-D box of elements, each dim with its own source and destination stride (a source
// stride may be negative: Slice with a negative step; or 0: Expand). Built in plan(): dims of 1
// are dropped and adjacent dims contiguous in both source and destination merge, so the
// innermost contiguous run moves with one memcpy and run() does no per-element index maths.
// When the innermost dim is strided in the source but another dim is contiguous there (a
// Transpose that moves the last dim: attention's K^T), those two dims move in square tiles, so
// that both sides are read and written a cache line at a time.
class StridedCopy {
 public:
  // box: the dims copied, outermost first; strides and offsets in elements.
  StridedCopy(const Shape& box, const Strides& src_strides, const Strides& dst_strides,
              int64_t src_offset, int64_t dst_offset, std::size_t element_bytes)
      : element_bytes_(static_cast<int64_t>(element_bytes)) {
    const int64_t e = element_bytes_;
    src_offset_ = src_offset * e;
    dst_offset_ = dst_offset * e;
    if (box.elements() == 0) return;  // run_bytes_ stays 0: nothing to copy
    for (int32_t d = 0; d < box.rank; ++d) {
      const int64_t n = box.dims[at(d)];
      if (n == 1) continue;
      const int64_t s = src_strides[at(d)] * e;
      const int64_t t = dst_strides[at(d)] * e;
      if (rank_ > 0 && src_[at(rank_ - 1)] == s * n && dst_[at(rank_ - 1)] == t * n) {
        dims_[at(rank_ - 1)] *= n;  // the outer dim steps exactly over this one: one dim
        src_[at(rank_ - 1)] = s;
        dst_[at(rank_ - 1)] = t;
        continue;
      }
      dims_[at(rank_)] = n;
      src_[at(rank_)] = s;
      dst_[at(rank_)] = t;
      ++rank_;
    }
    run_bytes_ = e;
    const int32_t last = rank_ - 1;
    if (rank_ > 0 && src_[at(last)] == e && dst_[at(last)] == e) {
      --rank_;
      run_bytes_ = dims_[at(rank_)] * e;
    } else if (rank_ >= 2 && dst_[at(last)] == e && (e == 1 || e == 4 || e == 8)) {
      for (int32_t d = 0; d < last; ++d) {
        if (src_[at(d)] == e) tile_dim_ = d;
      }
    }
  }

  bool empty() const { return run_bytes_ == 0; }

  void run(const void* src, void* dst) const {
    if (empty()) return;
    const auto* s = static_cast<const std::byte*>(src) + src_offset_;
    auto* d = static_cast<std::byte*>(dst) + dst_offset_;
    if (rank_ == 0) {
      std::memcpy(d, s, static_cast<std::size_t>(run_bytes_));
      return;
    }
    if (tile_dim_ >= 0) {
      switch (element_bytes_) {
        case 1:
          return transpose_tiles<uint8_t>(s, d);
        case 4:
          return transpose_tiles<uint32_t>(s, d);
        default:  // 8: the constructor tiles no other size
          return transpose_tiles<uint64_t>(s, d);
      }
    }
    // Runs of one element: a fixed-size memcpy is a single load and store.
    switch (run_bytes_) {
      case 1:
        return strided_runs<1>(s, d);
      case 4:
        return strided_runs<4>(s, d);
      case 8:
        return strided_runs<8>(s, d);
      default:
        return strided_runs<0>(s, d);
    }
  }

 private:
  // Elements per side of a tile: 16 x 16 of 8 bytes is 2 KiB read and 2 KiB written, well
  // within L1, and every source and destination row is at least a 64-byte cache line for 4-byte
  // elements.
  static constexpr int64_t kTileElements = 16;

  // Calls f(src_offset, dst_offset) for every index of the loop dims before `end`, except `skip`.
  template <class F>
  void for_each_offset(int32_t end, int32_t skip, F f) const {
    std::array<int64_t, kMaxRank> idx{};
    int64_t src_off = 0;
    int64_t dst_off = 0;
    for (;;) {
      f(src_off, dst_off);
      int32_t d = end - 1;
      for (; d >= 0; --d) {
        if (d == skip) continue;
        src_off += src_[at(d)];
        dst_off += dst_[at(d)];
        if (++idx[at(d)] < dims_[at(d)]) break;
        src_off -= src_[at(d)] * dims_[at(d)];
        dst_off -= dst_[at(d)] * dims_[at(d)];
        idx[at(d)] = 0;
      }
      if (d < 0) return;
    }
  }

  // kBytes: the run's size when fixed (one element), 0 for run_bytes_.
  template <std::size_t kBytes>
  void strided_runs(const std::byte* src, std::byte* dst) const {
    const int32_t last = rank_ - 1;
    const int64_t n = dims_[at(last)];
    const int64_t src_step = src_[at(last)];
    const int64_t dst_step = dst_[at(last)];
    const std::size_t bytes = kBytes != 0 ? kBytes : static_cast<std::size_t>(run_bytes_);
    for_each_offset(last, -1, [&](int64_t s, int64_t d) {
      for (int64_t i = 0; i < n; ++i)
        std::memcpy(dst + d + i * dst_step, src + s + i * src_step, bytes);
    });
  }

  // The last dim (contiguous in the destination) and tile_dim_ (contiguous in the source) move as
  // a 2-D transpose in square tiles; the other dims loop around it.
  template <class T>
  void transpose_tiles(const std::byte* src, std::byte* dst) const {
    const int32_t last = rank_ - 1;
    const int64_t rows = dims_[at(tile_dim_)];
    const int64_t cols = dims_[at(last)];
    const int64_t src_col = src_[at(last)];
    const int64_t dst_row = dst_[at(tile_dim_)];
    for_each_offset(last, tile_dim_, [&](int64_t s, int64_t d) {
      for (int64_t r0 = 0; r0 < rows; r0 += kTileElements) {
        const int64_t r1 = std::min(rows, r0 + kTileElements);
        for (int64_t c0 = 0; c0 < cols; c0 += kTileElements) {
          const int64_t c1 = std::min(cols, c0 + kTileElements);
          for (int64_t r = r0; r < r1; ++r) {
            const std::byte* from = src + s + r * static_cast<int64_t>(sizeof(T));
            std::byte* to = dst + d + r * dst_row;
            for (int64_t c = c0; c < c1; ++c) {
              std::memcpy(to + c * static_cast<int64_t>(sizeof(T)), from + c * src_col, sizeof(T));
            }
          }
        }
      }
    });
  }

  int64_t element_bytes_ = 0;
  int32_t rank_ = 0;       // loop dims, outermost first; the contiguous run is not one of them
  int32_t tile_dim_ = -1;  // the loop dim moved in tiles with the last one; -1: none
  Strides dims_{};
  Strides src_{};  // bytes
  Strides dst_{};  // bytes
  int64_t src_offset_ = 0;
  int64_t dst_offset_ = 0;
  int64_t run_bytes_ = 0;  // bytes per memcpy; 0: the box is empty
};

std::unique_ptr<Kernel> copy_kernel(const StridedCopy& copy) {
  return make_kernel(
      [copy](const KernelIO& io) { copy.run(io.input<std::byte>(0), io.output<std::byte>(0)); });
}

// perm defaults to reversing the dims.
Result<std::unique_ptr<Kernel>> plan_transpose(PlanContext& ctx) {
  const TensorInfo& x = ctx.input(0);
  std::vector<int64_t> perm;
  if (const Attribute* a = ctx.node.attribute("perm"); a != nullptr) {
    perm = a->ints;
  } else {
    for (int32_t d = x.shape.rank - 1; d >= 0; --d) perm.push_back(d);
  }
  std::array<bool, kMaxRank> used{};
  bool valid = perm.size() == at(x.shape.rank);
  for (const int64_t p : perm) {
    valid = valid && p >= 0 && p < x.shape.rank && !used[at(p)];
    if (valid) used[at(p)] = true;
  }
  if (!valid) {
    return ctx.fail(fmt::format("perm [{}] is not a permutation of the dims of {}",
                                fmt::join(perm, ", "), x.shape.to_string()));
  }
  const Strides in_strides = dense_strides(x.shape);
  Shape out;
  out.rank = x.shape.rank;
  Strides src{};
  for (int32_t d = 0; d < out.rank; ++d) {
    out.dims[at(d)] = x.shape.dims[at(perm[at(d)])];
    src[at(d)] = in_strides[at(perm[at(d)])];
  }
  ctx.output(0) = {x.dtype, out};
  return copy_kernel(StridedCopy(out, src, dense_strides(out), 0, 0, dtype_bytes(x.dtype)));
}

struct SliceArgs {
  std::vector<int64_t> starts, ends, axes, steps;
};

// Opset 10+: inputs starts, ends, axes (default 0, 1, ...), steps (default 1). Before: the
// attributes starts, ends, axes, and no steps.
Result<SliceArgs> slice_args(const PlanContext& ctx) {
  SliceArgs args;
  if (ctx.node.opset < kSliceInputsOpset) {
    const Attribute* starts = ctx.node.attribute("starts");
    const Attribute* ends = ctx.node.attribute("ends");
    if (starts == nullptr || ends == nullptr) return ctx.fail("starts and ends are required");
    args.starts = starts->ints;
    args.ends = ends->ints;
    if (const Attribute* axes = ctx.node.attribute("axes"); axes != nullptr) args.axes = axes->ints;
  } else {
    const char* names[] = {"starts", "ends", "axes", "steps"};
    std::vector<int64_t>* fields[] = {&args.starts, &args.ends, &args.axes, &args.steps};
    for (std::size_t k = 1; k <= 4; ++k) {
      if (!ctx.has_input(k)) continue;
      auto v = vector_operand(ctx, k, names[k - 1]);
      if (!v) return v.error();
      *fields[k - 1] = std::move(v).value();
    }
  }
  const std::size_t n = args.starts.size();
  if (args.axes.empty() && !ctx.has_input(3)) {
    for (std::size_t i = 0; i < n; ++i) args.axes.push_back(static_cast<int64_t>(i));
  }
  if (args.steps.empty() && !ctx.has_input(4)) args.steps.assign(n, 1);
  if (args.ends.size() != n || args.axes.size() != n || args.steps.size() != n) {
    return ctx.fail(fmt::format("starts, ends, axes and steps have {}, {}, {} and {} values", n,
                                args.ends.size(), args.axes.size(), args.steps.size()));
  }
  return args;
}

// Per the ONNX spec: negative starts and ends count from the back; then for a positive step start
// clamps to [0, dim] and end to [0, dim], for a negative step start to [0, dim - 1] and end to
// [-1, dim - 1].
Result<std::unique_ptr<Kernel>> plan_slice(PlanContext& ctx) {
  const TensorInfo& x = ctx.input(0);
  auto args = slice_args(ctx);
  if (!args) return args.error();
  auto axes = normalize_axes(ctx, args->axes, x.shape.rank);
  if (!axes) return axes.error();
  const Strides in_strides = dense_strides(x.shape);
  Shape out = x.shape;
  Strides src = in_strides;
  int64_t offset = 0;
  for (std::size_t i = 0; i < axes->size(); ++i) {
    const auto a = at((*axes)[i]);
    const int64_t dim = x.shape.dims[a];
    if (args->steps[i] == 0) return ctx.fail(fmt::format("steps[{}] (for axis {}) is 0", i, a));
    // A step as long as the dim takes one element at most, as does any longer one: clamping it
    // there keeps the stride below 2^62 and -step defined.
    const int64_t longest = std::max<int64_t>(dim, 1);
    const int64_t step = std::clamp(args->steps[i], -longest, longest);
    const auto bound = [dim](int64_t v, int64_t lo, int64_t hi) {
      if (v < 0) v += dim;  // v >= INT64_MIN, dim >= 0: no overflow
      return v < lo ? lo : v > hi ? hi : v;
    };
    int64_t start = 0;
    int64_t count = 0;
    if (step > 0) {
      start = bound(args->starts[i], 0, dim);
      const int64_t end = bound(args->ends[i], 0, dim);
      count = end > start ? (end - start - 1) / step + 1 : 0;
    } else if (dim > 0) {
      start = bound(args->starts[i], 0, dim - 1);
      const int64_t end = bound(args->ends[i], -1, dim - 1);
      count = start > end ? (start - end - 1) / -step + 1 : 0;
    }
    out.dims[a] = count;
    src[a] = in_strides[a] * step;
    offset += start * in_strides[a];
  }
  ctx.output(0) = {x.dtype, out};
  return copy_kernel(StridedCopy(out, src, dense_strides(out), offset, 0, dtype_bytes(x.dtype)));
}

// Every input is copied to its place along axis; inputs with no elements are skipped.
Result<std::unique_ptr<Kernel>> plan_concat(PlanContext& ctx) {
  if (ctx.node.attribute("axis") == nullptr) return ctx.fail("the axis attribute is required");
  const TensorInfo& first = ctx.input(0);
  if (first.shape.rank == 0) return ctx.fail("inputs must have rank >= 1");
  auto axis = ctx.axis(ctx.node.int_attr("axis", 0), first.shape.rank);
  if (!axis) return axis.error();
  const auto a = at(*axis);
  Shape out = first.shape;
  out.dims[a] = 0;
  for (std::size_t k = 0; k < ctx.in.size(); ++k) {
    const TensorInfo& in = ctx.input(k);
    bool fits = in.present() && in.dtype == first.dtype && in.shape.rank == first.shape.rank;
    for (int32_t d = 0; fits && d < out.rank; ++d) {
      fits = at(d) == a || in.shape.dims[at(d)] == first.shape.dims[at(d)];
    }
    if (!fits) {
      return ctx.fail(fmt::format("input {} ({} {}) does not fit input 0 ({} {}) along axis {}", k,
                                  dtype_name(in.dtype), in.shape.to_string(),
                                  dtype_name(first.dtype), first.shape.to_string(), a));
    }
    out.dims[a] += in.shape.dims[a];
  }
  if (Status ok = check_bounded(ctx, out); !ok) return ok.error();
  const Strides dst = dense_strides(out);
  std::vector<std::pair<std::size_t, StridedCopy>> copies;
  int64_t offset = 0;
  for (std::size_t k = 0; k < ctx.in.size(); ++k) {
    const Shape& s = ctx.input(k).shape;
    StridedCopy copy(s, dense_strides(s), dst, 0, offset * dst[a], dtype_bytes(first.dtype));
    if (!copy.empty()) copies.emplace_back(k, copy);
    offset += s.dims[a];
  }
  ctx.output(0) = {first.dtype, out};
  return make_kernel([copies = std::move(copies)](const KernelIO& io) {
    for (const auto& [k, copy] : copies) copy.run(io.in[k], io.output<std::byte>(0));
  });
}

// Bidirectional (numpy) broadcast of the input with the shape operand.
Result<std::unique_ptr<Kernel>> plan_expand(PlanContext& ctx) {
  const TensorInfo& x = ctx.input(0);
  auto dims = vector_operand(ctx, 1, "the shape");
  if (!dims) return dims.error();
  if (dims->size() > static_cast<std::size_t>(kMaxRank)) {
    return ctx.unsupported(fmt::format("shape rank {} exceeds {}", dims->size(), kMaxRank));
  }
  const Shape target = Shape::of(*dims);
  if (std::any_of(dims->begin(), dims->end(), [](int64_t d) { return d < 0; })) {
    return ctx.fail(fmt::format("the shape {} has a negative dim", target.to_string()));
  }
  MultiBroadcast layout;
  const Shape shapes[2] = {x.shape, target};
  if (!make_multi_broadcast(shapes, &layout)) {
    return ctx.fail(
        fmt::format("input {} does not broadcast to {}", x.shape.to_string(), target.to_string()));
  }
  if (Status ok = check_bounded(ctx, layout.out); !ok) return ok.error();
  ctx.output(0) = {x.dtype, layout.out};
  return copy_kernel(StridedCopy(layout.out, layout.strides[0], dense_strides(layout.out), 0, 0,
                                 dtype_bytes(x.dtype)));
}

// ---------------------------------------------------------------- Gather

// out[o, j..., i] = data[o, indices[j...], i]: for each index, one row of `row_bytes` (the dims
// after axis) per outer position (the dims before axis).
struct GatherCall {
  int64_t outer = 0;
  int64_t axis_dim = 0;
  int64_t indices = 0;
  std::size_t row_bytes = 0;
};

// Reads an index from memory a client may be writing: exactly one load, so the value checked is
// the value used (a plain load may be repeated by the compiler). Not synchronisation: the result
// may be stale, never out of range.
template <class I>
int64_t read_once(const I* p) {
  return *static_cast<const volatile I*>(p);
}

Error index_error(int64_t index, int64_t dim) {
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("index {} is out of range [-{}, {})", index, dim, dim));
}

template <class I>
Status gather(const GatherCall& g, const I* indices, const std::byte* data, std::byte* out) {
  const auto row = static_cast<int64_t>(g.row_bytes);
  for (int64_t j = 0; j < g.indices; ++j) {
    const int64_t raw = read_once(indices + j);
    const int64_t idx = raw < 0 ? raw + g.axis_dim : raw;
    if (idx < 0 || idx >= g.axis_dim) return index_error(raw, g.axis_dim);
    if (row == 0) continue;
    for (int64_t o = 0; o < g.outer; ++o) {
      std::memcpy(out + (o * g.indices + j) * row, data + (o * g.axis_dim + idx) * row,
                  g.row_bytes);
    }
  }
  return {};
}

Result<std::unique_ptr<Kernel>> plan_gather(PlanContext& ctx) {
  const TensorInfo& data = ctx.input(0);
  const TensorInfo& indices = ctx.input(1);
  if (data.shape.rank == 0) return ctx.fail("data must have rank >= 1");
  if (!is_integer(indices.dtype)) {
    return ctx.fail(
        fmt::format("indices must be int64 or int32, not {}", dtype_name(indices.dtype)));
  }
  auto axis = ctx.axis(ctx.node.int_attr("axis", 0), data.shape.rank);
  if (!axis) return axis.error();
  const int32_t a = *axis;
  const int32_t rank = data.shape.rank - 1 + indices.shape.rank;
  if (rank > kMaxRank) {
    return ctx.unsupported(fmt::format("output rank {} exceeds {}", rank, kMaxRank));
  }
  GatherCall g;
  g.outer = product(data.shape, 0, a);
  g.axis_dim = data.shape.dims[at(a)];
  g.indices = indices.shape.elements();
  g.row_bytes = static_cast<std::size_t>(product(data.shape, a + 1, data.shape.rank)) *
                dtype_bytes(data.dtype);
  // Constant indices are checked now too, so a bad model fails when planning.
  if (indices.value != nullptr) {
    for (const int64_t i : ctx.ints(1)) {
      if (i < -g.axis_dim || i >= g.axis_dim) {
        return ctx.fail(index_error(i, g.axis_dim).message);
      }
    }
  }
  Shape out;
  out.rank = rank;
  std::copy_n(data.shape.dims.begin(), a, out.dims.begin());
  std::copy_n(indices.shape.dims.begin(), indices.shape.rank, out.dims.begin() + a);
  std::copy(data.shape.dims.begin() + a + 1, data.shape.dims.begin() + data.shape.rank,
            out.dims.begin() + a + indices.shape.rank);
  if (Status ok = check_bounded(ctx, out); !ok) return ok.error();
  ctx.output(0) = {data.dtype, out};
  if (indices.dtype == DType::kInt32) {
    return make_kernel([g](const KernelIO& io) {
      return gather(g, io.input<int32_t>(1), io.input<std::byte>(0), io.output<std::byte>(0));
    });
  }
  return make_kernel([g](const KernelIO& io) {
    return gather(g, io.input<int64_t>(1), io.input<std::byte>(0), io.output<std::byte>(0));
  });
}

// ---------------------------------------------------------------- Cast

// numpy's astype: float to integer truncates toward zero; a float that is NaN or out of the
// integer's range gives the integer's minimum (what numpy and ONNX Runtime give on x86, where
// C++ leaves it undefined). Anything nonzero (NaN too) is true; bools read as 0 or 1. Integer
// narrowing wraps.
template <class To, class From>
To cast_value(From v) {
  if constexpr (std::is_same_v<To, uint8_t>) {
    return v != From{0} ? 1 : 0;
  } else if constexpr (std::is_same_v<From, uint8_t>) {
    return v != 0 ? To{1} : To{0};
  } else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    constexpr auto lowest = static_cast<From>(std::numeric_limits<To>::min());  // -2^k, exact
    if (!(v >= lowest && v < -lowest)) return std::numeric_limits<To>::min();
    return static_cast<To>(v);
  } else {
    return static_cast<To>(v);
  }
}

Result<std::unique_ptr<Kernel>> plan_cast(PlanContext& ctx) {
  const TensorInfo& x = ctx.input(0);
  const Attribute* to_attr = ctx.node.attribute("to");
  if (to_attr == nullptr || to_attr->kind != Attribute::Kind::kInt) {
    return ctx.fail("the 'to' attribute is required");
  }
  const auto onnx_type = static_cast<int32_t>(to_attr->i);
  const DType to = dtype_from_onnx(onnx_type);
  if (!computable(to)) {
    return ctx.unsupported(
        fmt::format("cast to {} (ONNX data type {}); float32, int64, int32 and bool are supported",
                    to == DType::kInvalid ? "this type" : dtype_name(to), onnx_type));
  }
  ctx.output(0) = {to, x.shape};
  const int64_t n = x.shape.elements();
  std::unique_ptr<Kernel> kernel;
  dispatch_dtype(x.dtype, [&]<class From>() {
    dispatch_dtype(to, [&]<class To>() {
      kernel = make_kernel([n](const KernelIO& io) {
        const From* in = io.input<From>(0);
        To* out = io.output<To>(0);
        if constexpr (std::is_same_v<From, To> && !std::is_same_v<To, uint8_t>) {
          // The memory plan may put the output over the input.
          if (n > 0 && static_cast<const void*>(in) != out) {
            std::memcpy(out, in, at(n) * sizeof(To));
          }
        } else {
          for (int64_t i = 0; i < n; ++i) out[i] = cast_value<To>(in[i]);
        }
      });
    });
  });
  if (kernel == nullptr) {
    return ctx.unsupported(fmt::format("cast from {}", dtype_name(x.dtype)));
  }
  return kernel;
}

constexpr OpDef kOps[] = {
    {"Identity", plan_identity, Aliasing::kView},
    {"Flatten", plan_flatten, Aliasing::kView},
    {"Reshape", plan_reshape, Aliasing::kView, /*value_operands=*/0b10},
    {"Squeeze", plan_squeeze, Aliasing::kView, /*value_operands=*/0b10},
    {"Unsqueeze", plan_unsqueeze, Aliasing::kView, /*value_operands=*/0b10},
    {"Shape", plan_shape, Aliasing::kNone, 0, /*shapes_only=*/true},
    {"Size", plan_size, Aliasing::kNone, 0, /*shapes_only=*/true},
    {"ConstantOfShape", plan_constant_of_shape, Aliasing::kNone, /*value_operands=*/0b1},
    {"Transpose", plan_transpose},
    {"Slice", plan_slice, Aliasing::kNone, /*value_operands=*/0b11110},
    {"Concat", plan_concat},
    {"Expand", plan_expand, Aliasing::kNone, /*value_operands=*/0b10},
    {"Gather", plan_gather},
    {"Cast", plan_cast, Aliasing::kElementwise},
};

}  // namespace

std::span<const OpDef> tensor_ops() { return kOps; }

}  // namespace coproc::runtime::detail
