// The online models behind Mode::kAdaptive, and the tuning they give.
//
// Arrival rate: an EWMA (weight kArrivalEwmaWeight per arrival) of the
// interval between consecutive admitted requests and of their row counts;
// i = interval / rows is the mean time between rows arriving. Unknown (+inf)
// until two requests have been admitted.
//
// Cost model: exec(rows, padded_length) ~= f + p * elements, elements =
// rows * max(1, padded_length), fitted by least squares over the samples of
// record_execution(), each older sample's weight multiplied by
// kCostModelDecay per new one (so the fit follows a drifting machine). While
// every sample has the same element count, f and p cannot be told apart; the
// fit then goes through the origin (f = 0), which over-estimates larger
// batches: the safe side for a latency goal. Negative fits are clamped (f, p
// >= 0).
//
// Tuning (tune_adaptive), for the candidate's padded length L, e = p * max(1, L):
//   kLatency:    target 1 row, wait 0: run whatever is queued at once.
//   no cost sample yet (other targets): kDynamic's rule, target min_batch,
//                wait max_wait_ns.
//   kThroughput: rows per device-second B / (fill(B) + exec(B)), fill(B) =
//                (B - 1) * i, grows with B exactly when f > i (a batch's fixed
//                cost outweighs waiting for a row). Then target B =
//                min(max_batch, 1 + max_wait_ns / i); else target 1, wait 0.
//   kBalanced:   budget = p99_goal_ns / kBalancedGoalShare; target = the
//                largest B in [1, max_batch] with fill(B) + exec(B) <= budget,
//                B = floor((budget - f + i) / (i + e)); 1 when none fits. The
//                other half of the goal is left for waiting behind the batch
//                already running and for variance.
//   wait (kThroughput, kBalanced) = min(max_wait_ns, fill(target)).
#pragma once

#include <cstdint>

#include "scheduler/scheduler_types.h"

namespace coproc::daemon::sched {

// New sample's weight in the arrival EWMAs (1/8, as TCP's smoothed RTT).
inline constexpr double kArrivalEwmaWeight = 0.125;
// Weight kept by older cost samples per new one: ~20 batches of memory.
inline constexpr double kCostModelDecay = 0.95;
// kBalanced plans one batch's fill and execution within p99_goal_ns / 2.
inline constexpr uint64_t kBalancedGoalShare = 2;

// Arrivals count as paused after this many mean intervals without one; a
// Poisson stream has such a gap after about 2% of its requests.
inline constexpr double kStallIntervals = 4.0;

class ArrivalRateEstimator {
 public:
  // A request of `rows` rows arrived at arrival_ns (earlier than the last
  // arrival counts as simultaneous).
  void observe(uint64_t arrival_ns, uint32_t rows);
  // Mean interval between arriving rows; +inf until two arrivals.
  double ns_per_row() const;
  // When the arrival stream has paused: kStallIntervals mean request
  // intervals after the last arrival (kNever until an interval is known).
  // A batch waiting to fill is dispatched then: with closed-loop clients all
  // waiting on what is queued, nothing more will arrive to fill it.
  uint64_t stalled_at_ns() const;

 private:
  bool seen_arrival_ = false;
  bool seen_interval_ = false;
  uint64_t last_arrival_ns_ = 0;
  double interval_ns_ = 0;  // EWMA of the time between requests
  double rows_ = 0;         // EWMA of rows per request
};

class CostModel {
 public:
  void observe(uint32_t rows, int64_t padded_length, uint64_t exec_ns);
  bool fitted() const { return fitted_; }
  double fixed_ns() const { return fixed_ns_; }
  double per_element_ns() const { return per_element_ns_; }
  // f + p * elements; 0 before the first sample.
  double predict_ns(uint32_t rows, int64_t padded_length) const;

 private:
  void refit();

  bool fitted_ = false;
  // Decayed sums over samples (x = elements, y = exec_ns) for the fit.
  double weight_ = 0, sum_x_ = 0, sum_y_ = 0, sum_xx_ = 0, sum_xy_ = 0;
  double fixed_ns_ = 0;
  double per_element_ns_ = 0;
};

struct AdaptiveTuning {
  uint32_t target_rows = 1;  // dispatch once the candidate has this many rows,
  uint64_t wait_ns = 0;      // or once the oldest queued request has waited this long
};

AdaptiveTuning tune_adaptive(const Policy& policy, const ArrivalRateEstimator& arrivals,
                             const CostModel& cost, int64_t padded_length);

}  // namespace coproc::daemon::sched
