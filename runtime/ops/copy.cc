// Strided copies: the StridedCopy engine and the operators that are one or more of it, Transpose,
// Slice, Concat and Expand.
//
// They work on element SIZE, not type: one kernel moves float32, int64, int32 and bool alike. The
// copies' dims are merged in plan() so that the innermost contiguous run moves with one memcpy.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <utility>
#include <vector>

#include "ops/ops.h"

namespace coproc::runtime::detail {
namespace {

// Slice took starts, ends and axes as attributes before opset 10; inputs (and steps) since.
constexpr int64_t kSliceInputsOpset = 10;

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

  // The same copy for a device, in elements: the loop dims, then the contiguous run as the
  // innermost dim when it holds more than one element.
  StridedCopyCall call(std::size_t input) const {
    StridedCopyCall c;
    c.input = input;
    c.src_offset = src_offset_ / element_bytes_;
    c.dst_offset = dst_offset_ / element_bytes_;
    if (empty()) {
      c.layout.rank = 1;  // dims[0] = 0: nothing to copy
      return c;
    }
    for (int32_t d = 0; d < rank_; ++d) {
      c.layout.dims[at(d)] = dims_[at(d)];
      c.layout.a[at(d)] = src_[at(d)] / element_bytes_;
      c.layout.out[at(d)] = dst_[at(d)] / element_bytes_;
    }
    c.layout.rank = rank_;
    if (run_bytes_ > element_bytes_) {
      c.layout.dims[at(rank_)] = run_bytes_ / element_bytes_;
      c.layout.a[at(rank_)] = 1;
      c.layout.out[at(rank_)] = 1;
      ++c.layout.rank;
    }
    return c;
  }

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

Status choose_copy(const PlanContext& ctx, DType dtype, const StridedCopy& copy) {
  auto host = make_kernel(
      [copy](const KernelIO& io) { copy.run(io.input<std::byte>(0), io.output<std::byte>(0)); });
  return ctx.choose(std::move(host), [&] { return CopiesCall{dtype, {copy.call(0)}}; });
}

// perm defaults to reversing the dims.
Status plan_transpose(PlanContext& ctx) {
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
  return choose_copy(ctx, x.dtype,
                     StridedCopy(out, src, dense_strides(out), 0, 0, dtype_bytes(x.dtype)));
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
Status plan_slice(PlanContext& ctx) {
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
  return choose_copy(ctx, x.dtype,
                     StridedCopy(out, src, dense_strides(out), offset, 0, dtype_bytes(x.dtype)));
}

// Every input is copied to its place along axis; inputs with no elements are skipped.
Status plan_concat(PlanContext& ctx) {
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
  // The kernel takes a copy of the copies: choose() reads them after, when it describes the call.
  auto host = make_kernel([copies](const KernelIO& io) {
    for (const auto& [k, copy] : copies) copy.run(io.in[k], io.output<std::byte>(0));
  });
  return ctx.choose(std::move(host), [&] {
    CopiesCall call{first.dtype, {}};
    call.copies.reserve(copies.size());
    for (const auto& [k, copy] : copies) call.copies.push_back(copy.call(k));
    return call;
  });
}

// Bidirectional (numpy) broadcast of the input with the shape operand.
Status plan_expand(PlanContext& ctx) {
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
  return choose_copy(ctx, x.dtype,
                     StridedCopy(layout.out, layout.strides[0], dense_strides(layout.out), 0, 0,
                                 dtype_bytes(x.dtype)));
}

constexpr OpDef kOps[] = {
    {"Transpose", plan_transpose},
    {"Slice", plan_slice, Aliasing::kNone, /*value_operands=*/0b11110},
    {"Concat", plan_concat},
    {"Expand", plan_expand, Aliasing::kNone, /*value_operands=*/0b10},
};

}  // namespace

std::span<const OpDef> copy_ops() { return kOps; }

}  // namespace coproc::runtime::detail
