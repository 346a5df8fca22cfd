// Elementwise Add/Sub/Mul/Div with numpy broadcasting, and broadcast copies.
//
// make_broadcast() reduces any pair of shapes to the fewest merged dimensions, so the loops below
// only ever see three inner-row patterns: both operands advance (stride 1, 1), or one of them is
// held (stride 0). Each pattern is a simple loop the compiler vectorises.
#include <algorithm>
#include <cassert>
#include <cstring>

#include "coproc/kernels/cpu.h"

namespace coproc::kernels::cpu {
namespace {

struct AddOp {
  static float apply(float a, float b) { return a + b; }
};
struct SubOp {
  static float apply(float a, float b) { return a - b; }
};
struct MulOp {
  static float apply(float a, float b) { return a * b; }
};
struct DivOp {
  static float apply(float a, float b) { return a / b; }
};

template <class Op>
void same(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = Op::apply(a[i], b[i]);
}

template <class Op>
void scalar_a(float a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = Op::apply(a, b[i]);
}

template <class Op>
void scalar_b(const float* a, float b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = Op::apply(a[i], b);
}

// One row of the output with the operands' inner strides (each 0 or 1, not both 0).
template <class Op>
void row(const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n) {
  if (sa == sb) {
    same<Op>(a, b, out, n);
  } else if (sa == 0) {
    scalar_a<Op>(*a, b, out, n);
  } else {
    scalar_b<Op>(a, *b, out, n);
  }
}

// Walks every row of the merged dimensions with an odometer over all but the innermost one.
// Visitor is called as visit(a_offset, b_offset, out_offset, row_length).
template <class Visitor>
void for_each_row(const Broadcast& l, Visitor&& visit) {
  const int inner = l.rank - 1;
  const int64_t row_length = l.dims[inner];
  const int64_t rows = l.elements / row_length;
  int64_t index[kMaxRank] = {};
  int64_t a_offset = 0;
  int64_t b_offset = 0;
  for (int64_t r = 0; r < rows; ++r) {
    visit(a_offset, b_offset, r * row_length, row_length);
    for (int d = inner - 1; d >= 0; --d) {
      a_offset += l.a_strides[d];
      b_offset += l.b_strides[d];
      if (++index[d] < l.dims[d]) break;
      a_offset -= l.a_strides[d] * l.dims[d];
      b_offset -= l.b_strides[d] * l.dims[d];
      index[d] = 0;
    }
  }
}

template <class Op>
void run(const float* a, const float* b, float* out, const Broadcast& l) {
  using Kind = Broadcast::Kind;
  switch (l.kind) {
    case Kind::kSame:
      same<Op>(a, b, out, l.elements);
      return;
    case Kind::kScalarA:
      scalar_a<Op>(*a, b, out, l.elements);
      return;
    case Kind::kScalarB:
      scalar_b<Op>(a, *b, out, l.elements);
      return;
    case Kind::kRowA:
      for (int64_t r = 0; r < l.rows; ++r) same<Op>(a, b + r * l.cols, out + r * l.cols, l.cols);
      return;
    case Kind::kRowB:
      for (int64_t r = 0; r < l.rows; ++r) same<Op>(a + r * l.cols, b, out + r * l.cols, l.cols);
      return;
    case Kind::kStrided: {
      const int64_t sa = l.a_strides[l.rank - 1];
      const int64_t sb = l.b_strides[l.rank - 1];
      for_each_row(l, [&](int64_t ao, int64_t bo, int64_t oo, int64_t n) {
        row<Op>(a + ao, sa, b + bo, sb, out + oo, n);
      });
      return;
    }
  }
}

// Contiguous strides of `dims`, with 0 where the operand is broadcast along an output dimension.
void broadcast_strides(const int64_t* dims, const int64_t* out_dims, int rank, int64_t* strides) {
  int64_t stride = 1;
  for (int d = rank - 1; d >= 0; --d) {
    strides[d] = (dims[d] == 1 && out_dims[d] != 1) ? 0 : stride;
    stride *= dims[d];
  }
}

}  // namespace

bool make_broadcast(std::span<const int64_t> a_dims, std::span<const int64_t> b_dims,
                    Broadcast* out) {
  assert(a_dims.size() <= kMaxRank && b_dims.size() <= kMaxRank);
  Broadcast l;
  const int rank = static_cast<int>(std::max(a_dims.size(), b_dims.size()));
  // Right-align both shapes, padding with leading 1s.
  int64_t a[kMaxRank];
  int64_t b[kMaxRank];
  for (int d = 0; d < rank; ++d) {
    const int ia = d - (rank - static_cast<int>(a_dims.size()));
    const int ib = d - (rank - static_cast<int>(b_dims.size()));
    a[d] = ia >= 0 ? a_dims[static_cast<std::size_t>(ia)] : 1;
    b[d] = ib >= 0 ? b_dims[static_cast<std::size_t>(ib)] : 1;
    if (a[d] != b[d] && a[d] != 1 && b[d] != 1) return false;
    l.out_dims[d] = a[d] == 1 ? b[d] : a[d];
  }
  l.out_rank = rank;
  l.elements = 1;
  for (int d = 0; d < rank; ++d) l.elements *= l.out_dims[d];

  int64_t a_strides[kMaxRank];
  int64_t b_strides[kMaxRank];
  broadcast_strides(a, l.out_dims, rank, a_strides);
  broadcast_strides(b, l.out_dims, rank, b_strides);

  // Drop size-1 output dimensions, then merge each dimension into the previous merged one when
  // both operands step through the pair as one contiguous (or one broadcast) run.
  for (int d = 0; d < rank; ++d) {
    if (l.out_dims[d] == 1) continue;
    if (l.rank > 0) {
      const int p = l.rank - 1;
      if (l.a_strides[p] == a_strides[d] * l.out_dims[d] &&
          l.b_strides[p] == b_strides[d] * l.out_dims[d]) {
        l.dims[p] *= l.out_dims[d];
        l.a_strides[p] = a_strides[d];
        l.b_strides[p] = b_strides[d];
        continue;
      }
    }
    l.dims[l.rank] = l.out_dims[d];
    l.a_strides[l.rank] = a_strides[d];
    l.b_strides[l.rank] = b_strides[d];
    ++l.rank;
  }

  using Kind = Broadcast::Kind;
  if (l.elements == 0 || l.rank == 0) {
    l.kind = Kind::kSame;  // nothing to do, or one element each
  } else if (l.rank == 1) {
    l.kind = l.a_strides[0] == l.b_strides[0] ? Kind::kSame
             : l.a_strides[0] == 0            ? Kind::kScalarA
                                              : Kind::kScalarB;
  } else if (l.rank == 2 && l.a_strides[1] == 1 && l.b_strides[1] == 1 &&
             (l.a_strides[0] == 0) != (l.b_strides[0] == 0)) {
    l.kind = l.a_strides[0] == 0 ? Kind::kRowA : Kind::kRowB;
    l.rows = l.dims[0];
    l.cols = l.dims[1];
  } else {
    l.kind = Kind::kStrided;
  }
  *out = l;
  return true;
}

void binary(BinaryOp op, const float* a, const float* b, float* out, const Broadcast& layout) {
  if (layout.elements == 0) return;
  assert(a != nullptr && b != nullptr && out != nullptr);
  switch (op) {
    case BinaryOp::kAdd:
      return run<AddOp>(a, b, out, layout);
    case BinaryOp::kSub:
      return run<SubOp>(a, b, out, layout);
    case BinaryOp::kMul:
      return run<MulOp>(a, b, out, layout);
    case BinaryOp::kDiv:
      return run<DivOp>(a, b, out, layout);
  }
}

bool binary(BinaryOp op, const float* a, std::span<const int64_t> a_dims, const float* b,
            std::span<const int64_t> b_dims, float* out) {
  Broadcast layout;
  if (!make_broadcast(a_dims, b_dims, &layout)) return false;
  binary(op, a, b, out, layout);
  return true;
}

void broadcast_copy(const float* src, float* out, const Broadcast& layout) {
  if (layout.elements == 0) return;
  assert(src != nullptr && out != nullptr);
  using Kind = Broadcast::Kind;
  const auto bytes = [](int64_t n) { return static_cast<std::size_t>(n) * sizeof(float); };
  switch (layout.kind) {
    case Kind::kSame:
      std::memcpy(out, src, bytes(layout.elements));
      return;
    case Kind::kScalarA:
      std::fill(out, out + layout.elements, *src);
      return;
    case Kind::kRowA:
      for (int64_t r = 0; r < layout.rows; ++r) {
        std::memcpy(out + r * layout.cols, src, bytes(layout.cols));
      }
      return;
    case Kind::kScalarB:
    case Kind::kRowB:
      // The layout's b is the destination shape, so it is never the broadcast operand.
      assert(false && "broadcast_copy: the destination shape must be the layout's output");
      return;
    case Kind::kStrided: {
      const int64_t sa = layout.a_strides[layout.rank - 1];
      for_each_row(layout, [&](int64_t ao, int64_t, int64_t oo, int64_t n) {
        if (sa == 0) {
          std::fill(out + oo, out + oo + n, src[ao]);
        } else {
          std::memcpy(out + oo, src + ao, bytes(n));
        }
      });
      return;
    }
  }
}

}  // namespace coproc::kernels::cpu
