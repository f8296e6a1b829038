// CostModel: the per-row-count table, its interpolation and its text form.
#include "daemon/cost_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace specd::daemon {

CostModel::CostModel(int32_t max_rows, double ewma)
    : ewma_(ewma), mean_(static_cast<size_t>(std::max(max_rows, 2)) + 1, 0.0), interp_(mean_.size(), 0.0) {}

void CostModel::set(int32_t rows, double seconds) {
  if (rows < 1 || rows > max_rows() || !(seconds > 0.0) || !std::isfinite(seconds)) return;
  mean_[static_cast<size_t>(rows)] = seconds;
  rebuild();
}

// A step the OS preempted can take many times its usual time; clipped to twice the running mean,
// one such outlier moves the mean by at most the EWMA weight.
double CostModel::fold(double mean, double x) const {
  if (mean <= 0.0) return x;
  return (1.0 - ewma_) * mean + ewma_ * std::min(x, 2.0 * mean);
}

// A row count measured before moves by the EWMA weight, and every other knot moves by the same
// factor: the table keeps the shape the calibration measured and follows the machine's speed now.
// Without that, a calibration made on a busier machine (or cached from one) was corrected only at
// the row counts that ran, so after a run of one-row steps a 2-row step looked several times its
// real cost, and auto never ran the step that would have corrected it. A row count between two
// knots does the same with its interpolated value: it becomes no knot, since one sample taken as a
// knot fixed that count's ratio to the others for good (every later sample of it moves them all):
// on a 1B model a first 21-row tree step that ran slow kept 21 rows at twice their cost, and auto
// kept to narrower trees. Below the first knot or past the last, where only live steps say what
// the shape is, a row count seen for the first time becomes a knot as it is.
void CostModel::observe(int32_t rows, double seconds) {
  if (rows < 1 || rows > max_rows() || !(seconds > 0.0) || !std::isfinite(seconds)) return;
  double& m = mean_[static_cast<size_t>(rows)];
  const bool between = m <= 0.0 && knots_ >= 2 && rows > first_knot_ && rows < last_knot_;
  const double before = between ? interp_[static_cast<size_t>(rows)] : m;
  const double after = fold(before, seconds);
  if (!between) m = after;
  if (before > 0.0) {
    const double factor = after / before;
    for (int32_t n = 1; n <= max_rows(); ++n)
      if (n != rows || between) mean_[static_cast<size_t>(n)] *= factor;
  }
  rebuild();
}

// interp_[n] for every n: knots as measured, linear between knots, the nearest knot's value below
// the first one, the last two knots' slope past the last one (a single knot: the prior slope scales
// it), and never below the value for fewer rows: noisy means at rarely seen row counts must not make
// more rows look cheaper than fewer.
void CostModel::rebuild() {
  const int32_t top = max_rows();
  int32_t prev = 0, last = 0, before_last = 0;
  knots_ = 0;
  first_knot_ = 0;
  for (int32_t n = 1; n <= top; ++n) {
    if (mean_[static_cast<size_t>(n)] <= 0.0) continue;
    ++knots_;
    const double v = mean_[static_cast<size_t>(n)];
    if (prev == 0) {
      first_knot_ = n;
      for (int32_t j = 1; j < n; ++j) interp_[static_cast<size_t>(j)] = v;
    } else {
      const double pv = mean_[static_cast<size_t>(prev)];
      for (int32_t j = prev + 1; j < n; ++j) interp_[static_cast<size_t>(j)] = pv + (v - pv) * (j - prev) / (n - prev);
    }
    interp_[static_cast<size_t>(n)] = v;
    before_last = prev;
    prev = last = n;
  }
  last_knot_ = last;
  if (knots_ == 0) return;
  const double lv = mean_[static_cast<size_t>(last)];
  const double slope = before_last > 0 ? std::max(0.0, (lv - mean_[static_cast<size_t>(before_last)]) / (last - before_last))
                                       : lv / (1.0 + kPriorSlope * (last - 1)) * kPriorSlope;
  for (int32_t j = last + 1; j <= top; ++j) interp_[static_cast<size_t>(j)] = lv + slope * (j - last);
  for (int32_t j = 2; j <= top; ++j)
    interp_[static_cast<size_t>(j)] = std::max(interp_[static_cast<size_t>(j)], interp_[static_cast<size_t>(j - 1)]);
}

void CostModel::observe_overhead(double seconds) {
  if (!(seconds >= 0.0) || !std::isfinite(seconds)) return;
  overhead_ = overhead_seen_ && overhead_ > 0.0 ? fold(overhead_, seconds) : seconds;
  overhead_seen_ = true;
}

double CostModel::seconds(int32_t rows) const {
  if (knots_ == 0 || rows < 1) return 0.0;
  const int32_t top = max_rows();
  if (rows <= top) return interp_[static_cast<size_t>(rows)];
  const double slope = interp_[static_cast<size_t>(top)] - interp_[static_cast<size_t>(top - 1)];
  return interp_[static_cast<size_t>(top)] + std::max(0.0, slope) * (rows - top);
}

double CostModel::relative(int32_t rows) const { return relative_on_top(0, rows); }

double CostModel::relative_on_top(int32_t others, int32_t rows) const {
  if (rows <= 0) return 0.0;
  others = std::max(others, 0);
  if (knots_ == 0) return (1.0 + kPriorSlope * (others + rows - 1)) / (1.0 + kPriorSlope * others);
  const double base = overhead_ + seconds(others + 1);
  return base > 0.0 ? (overhead_ + seconds(others + rows)) / base : 1.0;
}

std::vector<std::pair<int32_t, double>> CostModel::knots() const {
  std::vector<std::pair<int32_t, double>> out;
  for (int32_t n = 1; n <= max_rows(); ++n)
    if (mean_[static_cast<size_t>(n)] > 0.0) out.emplace_back(n, mean_[static_cast<size_t>(n)]);
  return out;
}

std::string CostModel::serialize() const {
  std::string out;
  char buf[64];
  for (const auto& [n, s] : knots()) {
    std::snprintf(buf, sizeof buf, "%s%d:%.9g", out.empty() ? "" : " ", n, s);
    out += buf;
  }
  return out;
}

bool CostModel::parse(const std::string& text) {
  std::vector<std::pair<int32_t, double>> read;
  std::istringstream in(text);
  std::string item;
  while (in >> item) {
    int32_t n = 0;
    double s = 0.0;
    char tail = 0;
    if (std::sscanf(item.c_str(), "%d:%lf%c", &n, &s, &tail) != 2 || n < 1 || n > max_rows() || !(s > 0.0) ||
        !std::isfinite(s))
      return false;
    read.emplace_back(n, s);
  }
  if (read.empty()) return false;
  std::fill(mean_.begin(), mean_.end(), 0.0);
  for (const auto& [n, s] : read) mean_[static_cast<size_t>(n)] = s;
  rebuild();
  return true;
}

}  // namespace specd::daemon
