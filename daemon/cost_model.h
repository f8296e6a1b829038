// CostModel: the time of a forward of n rows, measured by calibration and refined from live steps.
//
// Decoders choose how much to speculate from step_cost(n) = S(n) / S(1) (decoder ABI 1.2), where a
// step's time S(n) = O + T(n) is the forward of n rows plus the runtime's own per-step work O
// (building the batch, sampling, emitting; learned from live steps). On a small model O is most of
// a step, which makes extra rows cheaper than the forward alone says. The table holds absolute times
// per row count and answers ratios. Row counts with a measurement are
// knots; between knots the time is interpolated linearly, past the last knot extrapolated along the
// last two knots' slope (a forward's cost is close to affine in rows between the compute knees).
// Engine thread only; nothing allocates after construction.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace specd::daemon {

class CostModel {
 public:
  // Rows 1..max_rows are tracked; more rows are extrapolated. ewma is the weight of one new
  // observation in a row count's running mean (the calibration's own value counts as one).
  explicit CostModel(int32_t max_rows = 256, double ewma = 0.1);

  // Without any measurement the model assumes T(n) = 1 + prior_slope·(n-1) in units of T(1): a
  // guess that makes short drafts look cheap and long ones not, until real timings arrive.
  static constexpr double kPriorSlope = 0.05;

  // A calibration measurement (replaces what the row count had). seconds > 0, rows >= 1.
  void set(int32_t rows, double seconds);
  // A live step's forward time: folds it into the row count's running mean, and when that row count
  // had a mean, scales every other row count's by the same factor (the calibration's shape, the
  // live speed). A row count with no mean between two that have one scales them all by the factor
  // its interpolated value would move by, and gets none; elsewhere a first sample becomes its mean.
  // Ignored when rows is outside [1, max_rows] or seconds is not positive and finite.
  void observe(int32_t rows, double seconds);

  // A live step's time outside the forward and the decoders (their plan/accept): folded into O by
  // the same weight; negative or non-finite values are ignored.
  void observe_overhead(double seconds);
  double overhead_seconds() const { return overhead_; }

  // Expected seconds of a forward of rows rows (rows >= 1); 0 while nothing was measured.
  double seconds(int32_t rows) const;
  // S(rows) / S(1); the prior line while nothing was measured; 0 for rows <= 0.
  double relative(int32_t rows) const;
  // The marginal cost of `rows` more rows on top of `others` rows of other sequences, relative to
  // one row on top of them: S(others + rows) / S(others + 1).
  double relative_on_top(int32_t others, int32_t rows) const;
  // S(1) = O + T(1) in seconds (the unit of step_cost), 0 while no forward was measured.
  double one_row_seconds() const { return knots_ > 0 ? overhead_ + seconds(1) : 0.0; }
  bool measured() const { return knots_ > 0; }

  int32_t max_rows() const { return static_cast<int32_t>(mean_.size()) - 1; }
  // The measured row counts and their times (for the cache file and tests).
  std::vector<std::pair<int32_t, double>> knots() const;

  // "rows:seconds rows:seconds ..." and back (the calibration cache's payload). parse() returns false
  // and leaves the model unchanged on malformed text.
  std::string serialize() const;
  bool parse(const std::string& text);

 private:
  void rebuild();
  double fold(double mean, double x) const;

  double ewma_;
  std::vector<double> mean_;    // [max_rows + 1]: measured mean seconds, 0 where none
  std::vector<double> interp_;  // [max_rows + 1]: the answer for every row count, rebuilt on change
  int32_t knots_ = 0;
  int32_t first_knot_ = 0, last_knot_ = 0;  // the fewest and most rows with a mean (0: none)
  double overhead_ = 0.0;      // O, seconds
  bool overhead_seen_ = false;
};

}  // namespace specd::daemon
