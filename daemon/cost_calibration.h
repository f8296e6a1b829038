// The cost model's calibration: a few timed forwards at model load, cached per model, device and
// thread count under $SPECD_CACHE/cost/, measured again when the cache is stale.
#pragma once

#include "daemon/cost_model.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace specd::daemon {

struct CalibrationKey {
  std::string digest;  // the model's weights
  std::string device;  // the backend's name, e.g. "cpu", "cuda:0"
  int32_t threads = 1;
};

struct CalibrationOptions {
  // Row counts timed, in this order; the ones the budget leaves out are extrapolated, then
  // learned online. 1 and 2 are always timed.
  std::vector<int32_t> rows = {1, 2, 4, 8, 16, 32, 64};
  int32_t reps = 3;              // timed forwards per row count; the median counts
  // Stop starting new row counts past this: on a 1B model on 2 cores, 1 to 32 rows took 1.5 s and
  // 64 rows about 1 s more; without the 64-row knot, 64 rows were extrapolated at 2.3x one row
  // against the 3.7x they cost, and LoPA auto (its rounds are 16-128 rows) chose rounds that lost.
  double budget_seconds = 3.0;
  int64_t max_age_seconds = 7 * 24 * 3600;  // older caches are stale: drivers, clocks and builds change
  std::string cache_dir;         // "" → $SPECD_CACHE/cost, else ~/.cache/specd/cost
};

enum class CalibrationSource { Cache, Measured };

// One forward of `rows` rows, all wanting logits; returns its seconds (<= 0: failed).
using ForwardTimer = std::function<double(int32_t rows)>;

// The cache file for key under dir (digest, device and thread count in its name).
std::string calibration_cache_path(const std::string& dir, const CalibrationKey& key);
std::string default_calibration_dir();

// Fill model from the cache when it is fresh (written by this format, within max_age of now_unix),
// else time forwards with timer and write the cache (best effort: an unwritable cache only costs a
// calibration next time). Returns where the numbers came from.
CalibrationSource calibrate_cost(CostModel& model, const CalibrationKey& key, const ForwardTimer& timer,
                                 const CalibrationOptions& opts, int64_t now_unix);

// The median of timer(rows) over reps runs (not allocation-free; load time only).
double median_seconds(const ForwardTimer& timer, int32_t rows, int32_t reps);

}  // namespace specd::daemon
