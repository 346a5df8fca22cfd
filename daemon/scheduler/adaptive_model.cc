#include "scheduler/adaptive_model.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace coproc::daemon::sched {
namespace {

// The sampled element counts count as all equal when their weighted variance
// is below this fraction of their squared mean.
constexpr double kSameElementsRelativeVariance = 1e-9;

double elements_of(uint32_t rows, int64_t padded_length) {
  return static_cast<double>(rows) * static_cast<double>(std::max<int64_t>(1, padded_length));
}

// (B - 1) * ns_per_row, saturated to what a wait in ns can hold.
uint64_t fill_wait_ns(uint32_t rows, double ns_per_row, uint64_t max_wait_ns) {
  if (rows <= 1) return 0;  // nothing to wait for (and 0 * inf would be NaN)
  const double fill_ns = static_cast<double>(rows - 1) * ns_per_row;
  return fill_ns >= static_cast<double>(max_wait_ns) ? max_wait_ns : static_cast<uint64_t>(fill_ns);
}

uint32_t clamp_rows(double rows, uint32_t max_batch) {
  if (!(rows >= 1)) return 1;  // also NaN
  if (rows >= static_cast<double>(max_batch)) return max_batch;
  return static_cast<uint32_t>(std::floor(rows));
}

}  // namespace

void ArrivalRateEstimator::observe(uint64_t arrival_ns, uint32_t rows) {
  const double w = kArrivalEwmaWeight;
  if (!seen_arrival_) {
    seen_arrival_ = true;
    last_arrival_ns_ = arrival_ns;
    rows_ = rows;
    return;
  }
  const double interval_ns =
      arrival_ns > last_arrival_ns_ ? static_cast<double>(arrival_ns - last_arrival_ns_) : 0.0;
  interval_ns_ = seen_interval_ ? w * interval_ns + (1 - w) * interval_ns_ : interval_ns;
  seen_interval_ = true;
  rows_ = w * rows + (1 - w) * rows_;
  last_arrival_ns_ = std::max(last_arrival_ns_, arrival_ns);
}

uint64_t ArrivalRateEstimator::stalled_at_ns() const {
  if (!seen_interval_) return kNever;
  const double gap = kStallIntervals * interval_ns_;
  if (gap >= static_cast<double>(kNever - last_arrival_ns_)) return kNever;
  return last_arrival_ns_ + static_cast<uint64_t>(gap);
}

double ArrivalRateEstimator::ns_per_row() const {
  if (!seen_interval_) return std::numeric_limits<double>::infinity();
  return interval_ns_ / rows_;
}

void CostModel::observe(uint32_t rows, int64_t padded_length, uint64_t exec_ns) {
  const double x = elements_of(rows, padded_length);
  const double y = static_cast<double>(exec_ns);
  weight_ = kCostModelDecay * weight_ + 1;
  sum_x_ = kCostModelDecay * sum_x_ + x;
  sum_y_ = kCostModelDecay * sum_y_ + y;
  sum_xx_ = kCostModelDecay * sum_xx_ + x * x;
  sum_xy_ = kCostModelDecay * sum_xy_ + x * y;
  fitted_ = true;
  refit();
}

void CostModel::refit() {
  const double mean_x = sum_x_ / weight_;
  const double variance_x = sum_xx_ / weight_ - mean_x * mean_x;
  const auto through_origin = [&] {
    fixed_ns_ = 0;
    per_element_ns_ = std::max(0.0, sum_xy_ / sum_xx_);
  };
  if (variance_x <= kSameElementsRelativeVariance * mean_x * mean_x) {
    through_origin();
    return;
  }
  const double covariance = sum_xy_ / weight_ - mean_x * (sum_y_ / weight_);
  per_element_ns_ = covariance / variance_x;
  fixed_ns_ = sum_y_ / weight_ - per_element_ns_ * mean_x;
  if (per_element_ns_ < 0) {  // noise: cost does not grow with the batch
    per_element_ns_ = 0;
    fixed_ns_ = sum_y_ / weight_;
  } else if (fixed_ns_ < 0) {
    through_origin();
  }
}

double CostModel::predict_ns(uint32_t rows, int64_t padded_length) const {
  if (!fitted_) return 0;
  return fixed_ns_ + per_element_ns_ * elements_of(rows, padded_length);
}

AdaptiveTuning tune_adaptive(const Policy& policy, const ArrivalRateEstimator& arrivals,
                             const CostModel& cost, int64_t padded_length) {
  if (policy.target == Target::kLatency) return {.target_rows = 1, .wait_ns = 0};
  if (!cost.fitted()) return {.target_rows = policy.min_batch, .wait_ns = policy.max_wait_ns};

  const double ns_per_row = arrivals.ns_per_row();
  const double fixed_ns = cost.fixed_ns();
  uint32_t target_rows = 1;
  if (std::isinf(ns_per_row)) {
    target_rows = 1;  // no rate yet: nothing is known to be coming
  } else if (policy.target == Target::kThroughput) {
    if (fixed_ns > ns_per_row) {
      target_rows =
          clamp_rows(1 + static_cast<double>(policy.max_wait_ns) / ns_per_row, policy.max_batch);
    }
  } else {
    const double budget_ns =
        static_cast<double>(policy.p99_goal_ns) / static_cast<double>(kBalancedGoalShare);
    const double row_ns = cost.per_element_ns() * elements_of(1, padded_length);
    const double denominator = ns_per_row + row_ns;
    target_rows = denominator <= 0 ? policy.max_batch
                                   : clamp_rows((budget_ns - fixed_ns + ns_per_row) / denominator,
                                                policy.max_batch);
  }
  return {.target_rows = target_rows,
          .wait_ns = fill_wait_ns(target_rows, ns_per_row, policy.max_wait_ns)};
}

}  // namespace coproc::daemon::sched
