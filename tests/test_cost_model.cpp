// The cost model (daemon/cost_model.h) and its calibration cache (daemon/cost_calibration.h) on
// synthetic timings: deterministic, no forward runs.
#include "daemon/cost_calibration.h"
#include "daemon/cost_model.h"
#include "tests/test_support.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <thread>

#include <unistd.h>

using namespace specd::daemon;
namespace fs = std::filesystem;

namespace {

// T(n) = 1 ms + 0.25 ms per extra row: an affine machine.
double affine(int32_t rows) { return 1e-3 + 0.25e-3 * (rows - 1); }

std::string fresh_dir(const char* name) {
  const fs::path d = fs::temp_directory_path() / ("specd_cost_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(d);
  return d.string();
}

}  // namespace

TEST_CASE("cost model: the prior before any measurement, then knots, interpolation and extrapolation") {
  CostModel m(64);
  CHECK_FALSE(m.measured());
  CHECK(m.seconds(4) == 0.0);
  CHECK(m.relative(1) == doctest::Approx(1.0));
  CHECK(m.relative(11) == doctest::Approx(1.0 + 10 * CostModel::kPriorSlope));
  CHECK(m.relative(0) == 0.0);
  m.set(1, 1e-3);
  m.set(8, 2e-3);
  m.set(16, 4e-3);
  CHECK(m.measured());
  CHECK(m.seconds(1) == doctest::Approx(1e-3));
  CHECK(m.seconds(4) == doctest::Approx(1e-3 + 1e-3 * 3 / 7));   // between the knots 1 and 8
  CHECK(m.seconds(12) == doctest::Approx(3e-3));                 // between 8 and 16
  CHECK(m.seconds(32) == doctest::Approx(8e-3));                 // the last slope, 0.25 ms per row
  CHECK(m.seconds(100) == doctest::Approx(4e-3 + 84 * 0.25e-3)); // past the table too
  CHECK(m.relative(16) == doctest::Approx(4.0));
  // On top of 7 rows of other sequences, one more row costs T(8)/T(8) and 9 more T(16)/T(8).
  CHECK(m.relative_on_top(7, 1) == doctest::Approx(1.0));
  CHECK(m.relative_on_top(7, 9) == doctest::Approx(2.0));
  CHECK(m.relative_on_top(-3, 16) == doctest::Approx(4.0));  // negative others count as none
  // Bad inputs change nothing.
  m.set(0, 1.0);
  m.set(65, 1.0);
  m.set(2, -1.0);
  m.observe(3, std::numeric_limits<double>::infinity());
  CHECK(m.knots().size() == 3);
}

TEST_CASE("cost model: the runtime's per-step overhead makes extra rows relatively cheaper") {
  CostModel m(16, 0.5);
  m.set(1, 1e-3);
  m.set(8, 2e-3);
  CHECK(m.relative(8) == doctest::Approx(2.0));
  m.observe_overhead(1e-3);  // the first observation is taken as it is
  CHECK(m.overhead_seconds() == doctest::Approx(1e-3));
  CHECK(m.relative(8) == doctest::Approx(3.0 / 2.0));
  CHECK(m.one_row_seconds() == doctest::Approx(2e-3));
  m.observe_overhead(1.5e-3);
  CHECK(m.overhead_seconds() == doctest::Approx(1.25e-3));
  m.observe_overhead(1.0);  // a preempted step counts as twice the mean
  CHECK(m.overhead_seconds() == doctest::Approx(0.5 * 1.25e-3 + 0.5 * 2.5e-3));
  m.observe_overhead(-1.0);  // noise below zero is ignored
  m.observe_overhead(std::numeric_limits<double>::quiet_NaN());
  CHECK(m.overhead_seconds() == doctest::Approx(0.5 * 1.25e-3 + 0.5 * 2.5e-3));
  CostModel none(16);
  none.observe_overhead(1e-3);
  CHECK(none.one_row_seconds() == 0.0);  // no forward measured: no unit yet
}

TEST_CASE("cost model: more rows never look cheaper than fewer, whatever the noisy means say") {
  CostModel m(16);
  m.set(1, 2e-3);
  m.set(4, 1e-3);  // a lucky measurement
  m.set(8, 3e-3);
  CHECK(m.seconds(4) == doctest::Approx(2e-3));
  CHECK(m.seconds(3) == doctest::Approx(2e-3));
  CHECK(m.relative(5) >= 1.0);
  for (int32_t n = 2; n <= 16; ++n) CHECK(m.seconds(n) >= m.seconds(n - 1));
}

TEST_CASE("cost model: a single knot scales the prior; rows below the first knot cost as much as it") {
  CostModel m(32);
  m.set(4, 2e-3);
  CHECK(m.seconds(1) == doctest::Approx(2e-3));
  CHECK(m.seconds(2) == doctest::Approx(2e-3));
  CHECK(m.seconds(5) > m.seconds(4));
}

TEST_CASE("cost model: live steps move a row count's mean by the EWMA weight, deterministically") {
  CostModel m(16, 0.5);
  m.observe(2, 4e-3);  // first observation: taken as it is
  CHECK(m.seconds(2) == doctest::Approx(4e-3));
  m.observe(2, 2e-3);
  CHECK(m.seconds(2) == doctest::Approx(3e-3));
  m.observe(2, 2e-3);
  CHECK(m.seconds(2) == doctest::Approx(2.5e-3));
  m.observe(2, 1.0);  // a preempted step counts as twice the mean, no more
  CHECK(m.seconds(2) == doctest::Approx(0.5 * 2.5e-3 + 0.5 * 5e-3));
  m.observe(2, 2.5e-3);
  m.observe(2, 1.875e-3);
  CHECK(m.seconds(2) == doctest::Approx(2.5e-3));
  m.observe(1, 1e-3);
  CHECK(m.relative(2) == doctest::Approx(2.5));
  m.observe(0, 1.0);
  m.observe(17, 1.0);
  m.observe(3, 0.0);
  CHECK(m.knots().size() == 2);
}

TEST_CASE("cost model: live steps at one row count carry the calibration's shape to the speed they see") {
  // Calibrated on a machine four times slower (say, busy): 1 row 0.4 s, 2 rows 0.44 s, 8 rows 0.6 s.
  CostModel m(16, 0.1);
  m.set(1, 0.4);
  m.set(2, 0.44);
  m.set(8, 0.6);
  // Now only one-row steps run, at 0.1 s: every knot follows, and the ratios stay the calibration's.
  for (int i = 0; i < 200; ++i) m.observe(1, 0.1);
  CHECK(m.seconds(1) == doctest::Approx(0.1).epsilon(1e-3));
  CHECK(m.seconds(2) == doctest::Approx(0.11).epsilon(1e-3));
  CHECK(m.seconds(8) == doctest::Approx(0.15).epsilon(1e-3));
  CHECK(m.relative(2) == doctest::Approx(1.1).epsilon(1e-3));  // not 4.4: a 2-row step still looks cheap
  // A row count between knots moves them all by the factor its interpolated value moves by, and
  // becomes no knot: one sample must not fix its ratio to the others for good.
  const double s1 = m.seconds(1), s2 = m.seconds(2), s4 = m.seconds(4), s8 = m.seconds(8);
  m.observe(4, 0.2);
  const double factor = (0.9 * s4 + 0.1 * 0.2) / s4;
  CHECK(m.knots().size() == 3);
  CHECK(m.seconds(2) == doctest::Approx(s2 * factor));
  CHECK(m.seconds(4) == doctest::Approx(s4 * factor));
  CHECK(m.relative(8) == doctest::Approx(s8 / s1));  // the calibration's shape
  // Past the last knot, where only live steps say what the shape is, a first sample is taken as it
  // is and moves nothing; from then on it is a knot like the others.
  const double before = m.seconds(2);
  m.observe(12, 0.5);
  CHECK(m.seconds(12) == doctest::Approx(0.5));
  CHECK(m.seconds(2) == doctest::Approx(before));
  CHECK(m.knots().size() == 4);
}

TEST_CASE("cost model: serialize and parse round-trip; malformed text leaves the model alone") {
  CostModel a(64);
  a.set(1, 1.5e-3);
  a.set(8, 2.25e-3);
  CostModel b(64);
  REQUIRE(b.parse(a.serialize()));
  CHECK(b.knots() == a.knots());
  for (const char* bad : {"", "1:x", "0:1", "65:1", "3:-1", "2:1e-3 junk", "4:1e-3q"}) {
    CAPTURE(bad);
    CHECK_FALSE(b.parse(bad));
  }
  CHECK(b.knots() == a.knots());
}

TEST_CASE("calibration: measured once, then read from the cache until it is stale or broken") {
  const std::string dir = fresh_dir("cache");
  CalibrationOptions o;
  o.cache_dir = dir;
  o.rows = {1, 2, 4, 8};
  const CalibrationKey key{"0123abcd", "cuda:0", 2};
  int calls = 0;
  const ForwardTimer timer = [&](int32_t rows) {
    ++calls;
    return affine(rows);
  };
  CostModel m(64);
  CHECK(calibrate_cost(m, key, timer, o, 1000) == CalibrationSource::Measured);
  CHECK(calls == 1 + 4 * o.reps);  // a warm-up, then reps per row count
  CHECK(m.relative(8) == doctest::Approx(affine(8) / affine(1)));
  const std::string path = calibration_cache_path(dir, key);
  CHECK(path.find("cuda_0-t2") != std::string::npos);
  REQUIRE(fs::exists(path));

  CostModel cached(64);
  calls = 0;
  CHECK(calibrate_cost(cached, key, timer, o, 1000 + 3600) == CalibrationSource::Cache);
  CHECK(calls == 0);
  CHECK(cached.knots() == m.knots());
  // Another thread count is another machine as far as the cache goes.
  CostModel other(64);
  CHECK(calibrate_cost(other, CalibrationKey{"0123abcd", "cuda:0", 4}, timer, o, 2000) == CalibrationSource::Measured);
  // Stale: older than max_age.
  CostModel stale(64);
  CHECK(calibrate_cost(stale, key, timer, o, 1000 + o.max_age_seconds + 1) == CalibrationSource::Measured);
  // Broken: an older format (v1: a big model's file held only 1 and 2 rows), or garbage.
  for (const char* text : {"specd-cost-v0 5000\n1:1e-3\n", "specd-cost-v1 5000\n1:1e-3 2:2e-3\n",
                           "specd-cost-v2 5000\n1:oops\n", "nonsense"}) {
    std::ofstream(path, std::ios::trunc) << text;
    CostModel again(64);
    CHECK(calibrate_cost(again, key, timer, o, 5000) == CalibrationSource::Measured);
    CHECK(again.measured());
  }
  fs::remove_all(dir);
}

TEST_CASE("calibration: the budget stops new row counts after 1 and 2; failed timings and an unwritable cache") {
  CalibrationOptions o;
  o.cache_dir = "/proc/specd-no-such-dir";  // cannot be created: the calibration still fills the model
  o.rows = {1, 2, 4, 8, 16};
  o.budget_seconds = 0.0;
  int calls = 0;
  CostModel m(64);
  CHECK(calibrate_cost(m, {"d", "cpu", 1}, [&](int32_t r) { ++calls; return affine(r); }, o, 1) ==
        CalibrationSource::Measured);
  CHECK(m.knots().size() == 2);  // 1 and 2 only
  CHECK(calls == 1 + 2 * o.reps);
  CostModel failed(64);
  o.budget_seconds = 10.0;
  calibrate_cost(failed, {"d", "cpu", 1}, [](int32_t) { return 0.0; }, o, 1);
  CHECK_FALSE(failed.measured());  // falls back to the prior, and writes no cache
  CHECK(median_seconds([](int32_t r) { return r == 3 ? -1.0 : 1.0; }, 3, 3) == 0.0);
}

TEST_CASE("calibration: the warm-up forward does not count against the budget") {
  // A first forward that faults in a big model's weights took the whole budget: only 1 and 2 rows
  // were timed. The warm-up here takes twice the budget; the timed forwards take no time.
  CalibrationOptions o;
  o.cache_dir = "/proc/specd-no-such-dir";
  o.rows = {1, 2, 4, 8, 16};
  o.budget_seconds = 0.1;
  int calls = 0;
  CostModel m(64);
  calibrate_cost(m, {"d", "cpu", 1}, [&](int32_t r) {
    if (calls++ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return affine(r);
  }, o, 1);
  CHECK(m.knots().size() == 5);
}

TEST_CASE("calibration: the default cache lives under $SPECD_CACHE/cost") {
  specd::test::ScopedEnv cache("SPECD_CACHE", "/tmp/specd-x");
  CHECK(default_calibration_dir() == "/tmp/specd-x/cost");
}
