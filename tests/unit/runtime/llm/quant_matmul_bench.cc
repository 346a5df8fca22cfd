// Quantized matrix kernel benchmark: the reference model's matrix shapes (SmolLM2-135M: Q4_1
// blocks, the Q8_0 output head) at decode (m = 1, 4, 16 activation rows) and prefill (m = 512),
// per variant and weight layout, on one thread; then the best variant on every intra-op thread.
// Weights rotate over copies filling kColdBytes, so every call streams its weights from memory as
// a decoding step does (one matrix is smaller than the caches). Prints the p50 and p90 time per
// call, the GB/s of weights streamed and the GOPS (2 m n k), next to a single-thread streaming
// read of a 256 MB buffer measured in the same run; then matmul-only whole-model rates.
// Not a test: it asserts nothing.
//
//   llm_quant_bench [threads [shape]]   (threads for the "best xN" rows, default 2; only the
//   shapes whose name contains `shape`)
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "coproc/kernels/parallel.h"
#include "coproc/kernels/quant_matmul.h"

namespace {

namespace cpu = coproc::kernels::cpu;
using Clock = std::chrono::steady_clock;

constexpr int64_t kColdBytes = int64_t{128} << 20;
constexpr int64_t kStreamBytes = int64_t{256} << 20;
constexpr double kMinSeconds = 0.25;
constexpr int kMinCalls = 5;

struct Shape {
  const char* name;
  cpu::QuantWeight type;
  int64_t n, k;
  int per_layer;  // matrices of this shape per block (0: the output head, once per token)
};
constexpr Shape kShapes[] = {
    {"q,o 576x576", cpu::QuantWeight::kQ4_1, 576, 576, 2},
    {"k,v 192x576", cpu::QuantWeight::kQ4_1, 192, 576, 2},
    {"gate,up 1536x576", cpu::QuantWeight::kQ4_1, 1536, 576, 2},
    {"down 576x1536", cpu::QuantWeight::kQ4_1, 576, 1536, 1},
    {"head 49152x576", cpu::QuantWeight::kQ8_0, 49152, 576, 0},
};
constexpr int kLayers = 30;
constexpr int64_t kRows[] = {1, 4, 16, 512};

int64_t plain_bytes(const Shape& s) {
  const int64_t bb = s.type == cpu::QuantWeight::kQ8_0   ? 34
                     : s.type == cpu::QuantWeight::kQ4_1 ? 20
                                                         : 18;
  return s.n * (s.k / 32) * bb;
}

struct Timing {
  double p50_us = 0, p90_us = 0;
};

Timing measure(const std::function<void(int)>& call) {
  for (int i = 0; i < 2; ++i) call(i);
  std::vector<double> us;
  const auto start = Clock::now();
  for (int i = 0; static_cast<int>(us.size()) < kMinCalls ||
                  std::chrono::duration<double>(Clock::now() - start).count() < kMinSeconds;
       ++i) {
    const auto t0 = Clock::now();
    call(i);
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[us.size() * 9 / 10]};
}

__attribute__((target("avx2"))) uint64_t stream_sum_avx2(const uint8_t* p, int64_t bytes) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i + 128 <= bytes; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

// Single-thread read bandwidth, GB/s: the best of a few passes over a 256 MB buffer.
double stream_gbps() {
  auto* buf = static_cast<uint8_t*>(std::aligned_alloc(64, kStreamBytes));
  std::memset(buf, 1, kStreamBytes);
  double best = 0;
  uint64_t sink = 0;
  for (int pass = 0; pass < 5; ++pass) {
    const auto t0 = Clock::now();
    sink += stream_sum_avx2(buf, kStreamBytes);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, static_cast<double>(kStreamBytes) / s / 1e9);
  }
  std::free(buf);
  if (sink == 42) std::printf(" ");
  return best;
}

struct Weights {
  std::vector<std::vector<uint8_t>> plain, packed;
};

Weights make_weights(const Shape& s, std::mt19937& rng) {
  const int64_t bytes = plain_bytes(s);
  const int64_t copies = std::max<int64_t>(1, kColdBytes / bytes);
  Weights w;
  std::vector<uint8_t> one(static_cast<size_t>(bytes));
  const int64_t bb = bytes / (s.n * (s.k / 32));
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : one) b = static_cast<uint8_t>(byte(rng));
  for (int64_t blk = 0; blk < s.n * (s.k / 32); ++blk) {
    const uint16_t d = 0x2000;  // 2^-7: finite scales (and mins), whatever the random quants
    std::memcpy(one.data() + blk * bb, &d, 2);
    if (s.type == cpu::QuantWeight::kQ4_1) std::memcpy(one.data() + blk * bb + 2, &d, 2);
  }
  for (int64_t c = 0; c < copies; ++c) {
    w.plain.push_back(one);
    w.packed.emplace_back(static_cast<size_t>(cpu::quant_packed_bytes(s.type, s.n, s.k)));
    cpu::quant_pack(s.type, one.data(), s.n, s.k, w.packed.back().data());
  }
  return w;
}

void print_row(const Shape& s, int64_t m, const char* variant, const char* layout,
               const Timing& t) {
  const double bytes = static_cast<double>(plain_bytes(s));
  const double ops = 2.0 * static_cast<double>(m * s.n * s.k);
  std::printf("%-18s %4lld  %-12s %-7s %10.1f %10.1f %8.2f %8.1f\n", s.name,
              static_cast<long long>(m), variant, layout, t.p50_us, t.p90_us,
              bytes / (t.p50_us * 1e3), ops / (t.p50_us * 1e3));
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const char* only = argc > 2 ? argv[2] : "";
  std::printf("single-thread streaming read (256 MB): %.1f GB/s\n", stream_gbps());
  std::printf("best variant: %s\n\n", cpu::quant_isa_name(cpu::best_quant_isa()));
  std::printf("%-18s %4s  %-12s %-7s %10s %10s %8s %8s\n", "shape", "m", "variant", "layout",
              "p50 us", "p90 us", "GB/s", "GOPS");
  std::mt19937 rng(1);
  // best[shape][m]: p50 of the best variant, packed, one thread and `threads` threads.
  double best1[std::size(kShapes)][std::size(kRows)] = {};
  double bestn[std::size(kShapes)][std::size(kRows)] = {};
  for (size_t si = 0; si < std::size(kShapes); ++si) {
    const Shape& s = kShapes[si];
    if (std::strstr(s.name, only) == nullptr) continue;
    const Weights w = make_weights(s, rng);
    const int copies = static_cast<int>(w.plain.size());
    for (size_t mi = 0; mi < std::size(kRows); ++mi) {
      const int64_t m = kRows[mi];
      std::vector<float> x(static_cast<size_t>(m * s.k));
      std::normal_distribution<float> normal;
      for (float& v : x) v = normal(rng);
      std::vector<cpu::BlockQ8A> xq(static_cast<size_t>(m * (s.k / 32)));
      for (int64_t r = 0; r < m; ++r)
        cpu::quantize_q8a(x.data() + r * s.k, s.k, xq.data() + r * (s.k / 32));
      std::vector<float> y(static_cast<size_t>(m * s.n));
      for (const cpu::QuantIsa isa : {cpu::QuantIsa::kPortable, cpu::QuantIsa::kAvx2,
                                      cpu::QuantIsa::kAvxVnni, cpu::QuantIsa::kAvx512Vnni}) {
        if (!cpu::quant_isa_available(isa)) continue;
        // The portable code on the head at prefill would take minutes: left out.
        if (isa == cpu::QuantIsa::kPortable && m == 512 && s.per_layer == 0) continue;
        for (const bool packed : {true, false}) {
          const Timing t = measure([&](int i) {
            const auto& src = packed ? w.packed[i % copies] : w.plain[i % copies];
            if (packed) {
              cpu::quant_matmul_packed_rows(isa, s.type, src.data(), 0, s.n, s.k, xq.data(), m,
                                            y.data(), s.n);
            } else {
              cpu::quant_matmul_rows(isa, s.type, src.data(), 0, s.n, s.k, xq.data(), m, y.data(),
                                     s.n);
            }
          });
          print_row(s, m, cpu::quant_isa_name(isa), packed ? "packed" : "plain", t);
          if (packed && isa == cpu::best_quant_isa()) best1[si][mi] = t.p50_us;
        }
      }
      cpu::set_intra_op_threads(threads);
      const Timing t = measure([&](int i) {
        cpu::quant_matmul_packed(s.type, w.packed[i % copies].data(), s.n, s.k, xq.data(), m,
                                 y.data(), s.n);
      });
      cpu::set_intra_op_threads(1);
      char label[32];
      std::snprintf(label, sizeof label, "best x%d thr", threads);
      print_row(s, m, label, "packed", t);
      bestn[si][mi] = t.p50_us;
    }
  }
  // Matmul-only model rates: every block matrix once per layer, the head once per step (decode)
  // or once for the last token (prefill, as llama-bench's pp counts).
  std::printf("\nmatmul-only model rates (best variant, packed): tokens/s\n");
  for (int pass = 0; pass < 2; ++pass) {
    const auto& t = pass == 0 ? best1 : bestn;
    std::printf("  %d thread(s):", pass == 0 ? 1 : threads);
    for (size_t mi = 0; mi < std::size(kRows); ++mi) {
      double us = 0;
      for (size_t si = 0; si < std::size(kShapes); ++si) {
        us += kShapes[si].per_layer > 0 ? kLayers * kShapes[si].per_layer * t[si][mi]
                                        : (kRows[mi] == 512 ? t[si][0] : t[si][mi]);
      }
      std::printf("  m=%lld: %.0f", static_cast<long long>(kRows[mi]), kRows[mi] * 1e6 / us);
    }
    std::printf("\n");
  }
  return 0;
}
