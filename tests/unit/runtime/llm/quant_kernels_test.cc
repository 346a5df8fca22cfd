// The quantized matrix kernels (quant_matmul.h): every variant this CPU has, on every weight type
// and the shapes of the reference model and their edges, against a float reference computed here
// from the dequantized weights and activations; the variants against each other and the plain
// layout against the packed one, bit for bit; batch invariance (a row's outputs do not depend on
// the call's other rows, its position in the call, or how the weight rows are split over
// threads); and quantize_q8a, whose vector versions must make the portable blocks exactly.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "coproc/kernels/parallel.h"
#include "coproc/kernels/quant_matmul.h"

namespace coproc::kernels::cpu {
namespace {

constexpr QuantWeight kTypes[] = {QuantWeight::kQ4_0, QuantWeight::kQ4_1, QuantWeight::kQ8_0};
constexpr QuantIsa kIsas[] = {QuantIsa::kPortable, QuantIsa::kAvx2, QuantIsa::kAvxVnni,
                              QuantIsa::kAvx512Vnni};

const char* type_name(QuantWeight type) {
  return type == QuantWeight::kQ4_0 ? "q4_0" : type == QuantWeight::kQ4_1 ? "q4_1" : "q8_0";
}

int64_t block_bytes(QuantWeight type) {
  return type == QuantWeight::kQ4_0 ? 18 : type == QuantWeight::kQ4_1 ? 20 : 34;
}

std::vector<QuantIsa> available_isas() {
  std::vector<QuantIsa> isas;
  for (const QuantIsa isa : kIsas) {
    if (quant_isa_available(isa)) isas.push_back(isa);
  }
  return isas;
}

// Half <-> float for the test's own weights: scales are made as floats with few mantissa bits,
// normal in half, so the conversion is exact both ways.
uint16_t to_half(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const int32_t exponent = static_cast<int32_t>((bits >> 23) & 0xFFu) - 127 + 15;
  const uint32_t mantissa = (bits >> 13) & 0x3FFu;
  EXPECT_GT(exponent, 0);
  EXPECT_LT(exponent, 31);
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exponent) << 10) | mantissa);
}

float from_half(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t bits = sign | ((exponent + 112) << 23) | (static_cast<uint32_t>(h & 0x3FFu) << 13);
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return exponent == 0 ? (sign != 0 ? -0.0f : 0.0f) : f;
}

// A scale with 6 significant bits, magnitude in [lo, hi).
float scale(std::mt19937& rng, float lo, float hi) {
  const float v = std::uniform_real_distribution<float>(lo, hi)(rng);
  return std::ldexp(std::round(std::ldexp(v, 6 - std::ilogb(v))), std::ilogb(v) - 6);
}

// n rows of k elements in ggml's plain layout, with random scales and quants (kQ8_0's quants
// include -128 and 127, kQ4's every nibble).
std::vector<uint8_t> make_weights(QuantWeight type, int64_t n, int64_t k, std::mt19937& rng) {
  const int64_t bb = block_bytes(type);
  std::vector<uint8_t> w(static_cast<size_t>(n * (k / 32) * bb));
  std::uniform_int_distribution<int> byte(0, 255);
  for (int64_t blk = 0; blk < n * (k / 32); ++blk) {
    uint8_t* p = w.data() + blk * bb;
    const float d = (byte(rng) & 1 ? -1.0f : 1.0f) * scale(rng, 0.002f, 0.05f);
    const uint16_t dh = to_half(d);
    std::memcpy(p, &dh, 2);
    int64_t head = 2;
    if (type == QuantWeight::kQ4_1) {
      const uint16_t mh = to_half(-scale(rng, 0.01f, 0.3f));
      std::memcpy(p + 2, &mh, 2);
      head = 4;
    }
    for (int64_t i = head; i < bb; ++i) p[i] = static_cast<uint8_t>(byte(rng));
  }
  return w;
}

// Weight element e of row j, dequantized; mag_out gets |d * integer| + |m| (the size of the
// terms the kernel adds, for the tolerance).
double weight_at(QuantWeight type, const uint8_t* w, int64_t k, int64_t j, int64_t e,
                 double* mag_out) {
  const uint8_t* p = w + (j * (k / 32) + e / 32) * block_bytes(type);
  const int64_t i = e % 32;
  uint16_t dh;
  std::memcpy(&dh, p, 2);
  const double d = from_half(dh);
  if (type == QuantWeight::kQ8_0) {
    const double v = d * static_cast<int8_t>(p[2 + i]);
    *mag_out = std::fabs(v);
    return v;
  }
  const uint8_t* qs = p + (type == QuantWeight::kQ4_1 ? 4 : 2);
  const int nibble = i < 16 ? (qs[i] & 0x0F) : (qs[i - 16] >> 4);
  if (type == QuantWeight::kQ4_0) {
    const double v = d * (nibble - 8);
    *mag_out = std::fabs(v);
    return v;
  }
  uint16_t mh;
  std::memcpy(&mh, p + 2, 2);
  const double m = from_half(mh);
  *mag_out = std::fabs(d * nibble) + std::fabs(m);
  return d * nibble + m;
}

std::vector<float> make_floats(int64_t count, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(count));
  for (float& v : x) v = normal(rng);
  return x;
}

std::vector<BlockQ8A> quantize_rows(const std::vector<float>& x, int64_t m, int64_t k) {
  std::vector<BlockQ8A> q(static_cast<size_t>(m * (k / 32)));
  for (int64_t r = 0; r < m; ++r) {
    quantize_q8a_with(QuantIsa::kPortable, x.data() + r * k, k, q.data() + r * (k / 32));
  }
  return q;
}

struct Case {
  QuantWeight type;
  int64_t n, k, m;
  std::vector<uint8_t> w;
  std::vector<uint8_t> packed;
  std::vector<BlockQ8A> x;
};

Case make_case(QuantWeight type, int64_t n, int64_t k, int64_t m, uint32_t seed) {
  std::mt19937 rng(seed);
  Case c{type, n, k, m, make_weights(type, n, k, rng), {}, {}};
  c.packed.resize(static_cast<size_t>(quant_packed_bytes(type, n, k)));
  quant_pack(type, c.w.data(), n, k, c.packed.data());
  c.x = quantize_rows(make_floats(m * k, rng), m, k);
  return c;
}

std::vector<float> run(QuantIsa isa, const Case& c, bool packed) {
  std::vector<float> y(static_cast<size_t>(c.m * c.n), NAN);
  if (packed) {
    quant_matmul_packed_rows(isa, c.type, c.packed.data(), 0, c.n, c.k, c.x.data(), c.m, y.data(),
                             c.n);
  } else {
    quant_matmul_rows(isa, c.type, c.w.data(), 0, c.n, c.k, c.x.data(), c.m, y.data(), c.n);
  }
  return y;
}

// Bit-for-bit equality, NaN included.
void expect_same_bits(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(std::memcmp(&a[i], &b[i], sizeof(float)), 0)
        << what << ": element " << i << ": " << a[i] << " vs " << b[i];
  }
}

// The float reference: y = sum_k w[j][k] * (d * q)[i][k] in double from the dequantized values,
// within (blocks + 4) float roundings of the size of the terms.
void expect_near_reference(const Case& c, const std::vector<float>& y) {
  const int64_t nb = c.k / 32;
  std::vector<double> xd(static_cast<size_t>(c.m * c.k));
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t e = 0; e < c.k; ++e) {
      const BlockQ8A& b = c.x[static_cast<size_t>(i * nb + e / 32)];
      xd[static_cast<size_t>(i * c.k + e)] = static_cast<double>(b.d) * b.q[e % 32];
    }
  }
  std::vector<double> wd(static_cast<size_t>(c.k)), wmag(static_cast<size_t>(c.k));
  for (int64_t j = 0; j < c.n; ++j) {
    for (int64_t e = 0; e < c.k; ++e) wd[e] = weight_at(c.type, c.w.data(), c.k, j, e, &wmag[e]);
    for (int64_t i = 0; i < c.m; ++i) {
      double ref = 0, mag = 0;
      for (int64_t e = 0; e < c.k; ++e) {
        ref += wd[e] * xd[i * c.k + e];
        mag += wmag[e] * std::fabs(xd[i * c.k + e]);
      }
      const double tol = (static_cast<double>(nb) + 4) * FLT_EPSILON * mag + 1e-30;
      const double got = y[static_cast<size_t>(i * c.n + j)];
      ASSERT_NEAR(got, ref, tol) << "row " << i << " col " << j;
    }
  }
}

TEST(QuantMatmul, shouldMatchTheDequantizedReferenceInEveryVariantTypeAndShape) {
  uint32_t seed = 1;
  for (const QuantWeight type : kTypes) {
    for (const int64_t k : {32, 64, 576, 1536}) {
      for (const int64_t n : {1, 7, 192, 576}) {
        for (const int64_t m : {1, 2, 3, 4, 5, 8, 16, 17, 64, 520}) {
          // The largest products only where the reference stays cheap.
          if (m == 520 && n * k > 192 * 576) continue;
          const Case c = make_case(type, n, k, m, seed++);
          SCOPED_TRACE(testing::Message()
                       << type_name(type) << " k=" << k << " n=" << n << " m=" << m);
          const std::vector<float> portable = run(QuantIsa::kPortable, c, true);
          expect_near_reference(c, portable);
          for (const QuantIsa isa : available_isas()) {
            SCOPED_TRACE(quant_isa_name(isa));
            expect_same_bits(run(isa, c, true), portable, "packed vs portable");
            expect_same_bits(run(isa, c, false), portable, "plain vs portable");
          }
        }
      }
    }
  }
}

TEST(QuantMatmul, shouldGiveTheSameBitsForLongRowsSplitIntoBlockChunks) {
  // k = 2080 is 65 blocks: more than one chunk of blocks, the second resuming from y.
  for (const QuantWeight type : kTypes) {
    const Case c = make_case(type, 37, 2080, 9, 7);
    SCOPED_TRACE(type_name(type));
    const std::vector<float> portable = run(QuantIsa::kPortable, c, true);
    expect_near_reference(c, portable);
    for (const QuantIsa isa : available_isas()) {
      SCOPED_TRACE(quant_isa_name(isa));
      expect_same_bits(run(isa, c, true), portable, "packed");
      expect_same_bits(run(isa, c, false), portable, "plain");
    }
  }
}

TEST(QuantMatmul, shouldGiveEachRowTheSameBitsWhateverTheOtherRowsAndItsPosition) {
  for (const QuantWeight type : kTypes) {
    for (const QuantIsa isa : available_isas()) {
      SCOPED_TRACE(testing::Message() << type_name(type) << " " << quant_isa_name(isa));
      const Case c = make_case(type, 200, 576, 77, 11);
      const int64_t nb = c.k / 32;
      const std::vector<float> all = run(isa, c, true);
      for (int64_t i = 0; i < c.m; ++i) {
        // Row i alone, and row i at the end of a call with rows [i - s, i] for a few s.
        for (const int64_t before : {int64_t{0}, int64_t{3}, int64_t{8}, int64_t{13}}) {
          if (before > i) continue;
          const int64_t rows = before + 1;
          std::vector<float> y(static_cast<size_t>(rows * c.n));
          quant_matmul_packed_rows(isa, type, c.packed.data(), 0, c.n, c.k,
                                   c.x.data() + (i - before) * nb, rows, y.data(), c.n);
          for (int64_t j = 0; j < c.n; ++j) {
            const float a = y[static_cast<size_t>(before * c.n + j)];
            const float b = all[static_cast<size_t>(i * c.n + j)];
            ASSERT_EQ(std::memcmp(&a, &b, sizeof a), 0)
                << "row " << i << " col " << j << " with " << before << " rows before it";
          }
        }
      }
    }
  }
}

TEST(QuantMatmul, shouldGiveTheSameBitsHoweverTheWeightRowsAreSplit) {
  for (const QuantWeight type : kTypes) {
    for (const QuantIsa isa : available_isas()) {
      SCOPED_TRACE(testing::Message() << type_name(type) << " " << quant_isa_name(isa));
      const Case c = make_case(type, 150, 576, 5, 13);
      const std::vector<float> whole = run(isa, c, true);
      // Splits inside tiles, at tile edges and single rows.
      for (const int64_t cut : {int64_t{1}, int64_t{5}, int64_t{16}, int64_t{37}, int64_t{149}}) {
        std::vector<float> packed(static_cast<size_t>(c.m * c.n), NAN);
        std::vector<float> plain(static_cast<size_t>(c.m * c.n), NAN);
        for (const auto& [b, e] : {std::pair{int64_t{0}, cut}, std::pair{cut, c.n}}) {
          quant_matmul_packed_rows(isa, type, c.packed.data(), b, e, c.k, c.x.data(), c.m,
                                   packed.data(), c.n);
          quant_matmul_rows(isa, type, c.w.data(), b, e, c.k, c.x.data(), c.m, plain.data(), c.n);
        }
        expect_same_bits(packed, whole, "packed, split");
        expect_same_bits(plain, whole, "plain, split");
      }
    }
  }
}

TEST(QuantMatmul, shouldGiveTheSameBitsOnOneThreadAndOnTwo) {
  for (const QuantWeight type : kTypes) {
    SCOPED_TRACE(type_name(type));
    for (const int64_t m : {1, 16, 100}) {
      const Case c = make_case(type, 1536, 576, m, 17);
      std::vector<float> one(static_cast<size_t>(m * c.n)), two(one.size());
      std::vector<float> one_plain(one.size()), two_plain(one.size());
      set_intra_op_threads(1);
      quant_matmul_packed(type, c.packed.data(), c.n, c.k, c.x.data(), m, one.data(), c.n);
      quant_matmul(type, c.w.data(), c.n, c.k, c.x.data(), m, one_plain.data(), c.n);
      set_intra_op_threads(2);
      quant_matmul_packed(type, c.packed.data(), c.n, c.k, c.x.data(), m, two.data(), c.n);
      quant_matmul(type, c.w.data(), c.n, c.k, c.x.data(), m, two_plain.data(), c.n);
      set_intra_op_threads(1);
      expect_same_bits(two, one, "packed, 2 threads");
      expect_same_bits(two_plain, one, "plain, 2 threads");
      expect_same_bits(one_plain, one, "plain, 1 thread");
      expect_same_bits(one, run(best_quant_isa(), c, true), "best variant");
    }
  }
}

TEST(QuantMatmul, shouldWriteOnlyItsRowsAndColumnsWithARowStride) {
  const Case c = make_case(QuantWeight::kQ4_1, 40, 64, 3, 19);
  const int64_t ldy = 53;
  for (const QuantIsa isa : available_isas()) {
    SCOPED_TRACE(quant_isa_name(isa));
    std::vector<float> y(static_cast<size_t>(c.m * ldy), -7.0f);
    quant_matmul_packed_rows(isa, c.type, c.packed.data(), 3, 29, c.k, c.x.data(), c.m, y.data(),
                             ldy);
    const std::vector<float> dense = run(isa, c, true);
    for (int64_t i = 0; i < c.m; ++i) {
      for (int64_t j = 0; j < ldy; ++j) {
        const float got = y[static_cast<size_t>(i * ldy + j)];
        if (j >= 3 && j < 29) {
          ASSERT_EQ(got, dense[static_cast<size_t>(i * c.n + j)]) << i << "," << j;
        } else {
          ASSERT_EQ(got, -7.0f) << "wrote outside its range at " << i << "," << j;
        }
      }
    }
  }
}

TEST(QuantizeQ8A, shouldMakeTheSameBlocksInEveryVariant) {
  std::mt19937 rng(23);
  const int64_t k = 32 * 300;
  std::vector<float> x = make_floats(k, rng);
  // Blocks that stress the edges: all zero, one huge value, ties at d = 1, tiny values.
  for (int e = 0; e < 32; ++e) x[e] = 0.0f;
  x[32 + 5] = 3.0e30f;
  for (int e = 0; e < 32; ++e) x[64 + e] = static_cast<float>(e % 8) - 3.5f;
  x[64 + 31] = 127.0f;
  for (int e = 0; e < 32; ++e) x[96 + e] *= 1e-30f;
  std::vector<BlockQ8A> portable(static_cast<size_t>(k / 32));
  quantize_q8a_with(QuantIsa::kPortable, x.data(), k, portable.data());
  for (const QuantIsa isa : available_isas()) {
    SCOPED_TRACE(quant_isa_name(isa));
    std::vector<BlockQ8A> got(portable.size());
    quantize_q8a_with(isa, x.data(), k, got.data());
    for (size_t b = 0; b < got.size(); ++b) {
      ASSERT_EQ(std::memcmp(&got[b], &portable[b], sizeof(BlockQ8A)), 0) << "block " << b;
    }
  }
  std::vector<BlockQ8A> best(portable.size());
  quantize_q8a(x.data(), k, best.data());
  ASSERT_EQ(std::memcmp(best.data(), portable.data(), best.size() * sizeof(BlockQ8A)), 0);
}

TEST(QuantizeQ8A, shouldRoundToNearestWithTiesToEvenAndKeepTheScaledSum) {
  std::mt19937 rng(29);
  const int64_t k = 32 * 100;
  std::vector<float> x = make_floats(k, rng);
  // Block 0 has max 127, so d = 1 and the halves are ties.
  for (int e = 0; e < 32; ++e) x[e] = static_cast<float>(e) - 15.5f;
  x[31] = 127.0f;
  std::vector<BlockQ8A> q(static_cast<size_t>(k / 32));
  quantize_q8a(x.data(), k, q.data());
  EXPECT_EQ(q[0].d, 1.0f);
  for (int e = 0; e < 31; ++e) {
    const int expected = static_cast<int>(std::nearbyint(x[e]));  // ties to even by default
    EXPECT_EQ(q[0].q[e], expected) << x[e];
    EXPECT_EQ(std::abs(q[0].q[e]) % 2, 0) << "tie " << x[e] << " not to even";
  }
  for (size_t b = 0; b < q.size(); ++b) {
    float amax = 0;
    int sum = 0;
    for (int e = 0; e < 32; ++e) {
      amax = std::max(amax, std::fabs(x[b * 32 + e]));
      sum += q[b].q[e];
      ASSERT_LE(std::abs(q[b].q[e]), 127);
      ASSERT_LE(std::fabs(x[b * 32 + e] - q[b].d * q[b].q[e]), q[b].d * 0.5f * (1 + 1e-5f));
    }
    ASSERT_EQ(q[b].d, amax / 127.0f);
    ASSERT_EQ(q[b].s, q[b].d * static_cast<float>(sum));
  }
}

}  // namespace
}  // namespace coproc::kernels::cpu
