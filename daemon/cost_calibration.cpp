// Calibration of the cost model: timing, the cache file and its staleness rule.
#include "daemon/cost_calibration.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace specd::daemon {
namespace fs = std::filesystem;
namespace {

// The cache's first line; a new format gets a new number so old files read as stale. v2: the
// budget starts after the warm-up, so v1 files of big models (only 1 and 2 rows timed) are redone.
constexpr const char* kMagic = "specd-cost-v2";

// Names in the file name keep to [A-Za-z0-9._-]: a device "cuda:0" becomes "cuda_0".
std::string safe(const std::string& s) {
  std::string out = s.empty() ? "none" : s;
  for (char& c : out)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-')) c = '_';
  return out;
}

bool read_cache(const std::string& path, CostModel& model, int64_t now_unix, int64_t max_age) {
  std::ifstream in(path);
  std::string magic, payload;
  int64_t written = 0;
  if (!(in >> magic >> written) || magic != kMagic) return false;
  if (now_unix - written > max_age || written > now_unix + 60) return false;  // stale, or a clock jump
  std::getline(in >> std::ws, payload);
  CostModel fresh(model.max_rows());
  if (!fresh.parse(payload)) return false;
  model = fresh;
  return true;
}

void write_cache(const std::string& path, const CostModel& model, int64_t now_unix) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  const std::string tmp = path + ".tmp" + std::to_string(now_unix % 100000);
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << kMagic << ' ' << now_unix << '\n' << model.serialize() << '\n';
    if (!out) return;
  }
  fs::rename(tmp, path, ec);  // atomic: a reader sees the old file or the new one
  if (ec) fs::remove(tmp, ec);
}

}  // namespace

std::string default_calibration_dir() {
  if (const char* c = std::getenv("SPECD_CACHE"); c && *c) return std::string(c) + "/cost";
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/specd/cost";
}

std::string calibration_cache_path(const std::string& dir, const CalibrationKey& key) {
  return dir + "/" + safe(key.digest.substr(0, 32)) + "-" + safe(key.device) + "-t" + std::to_string(key.threads) +
         ".txt";
}

double median_seconds(const ForwardTimer& timer, int32_t rows, int32_t reps) {
  std::vector<double> t;
  for (int32_t i = 0; i < std::max(reps, 1); ++i) {
    const double s = timer(rows);
    if (s > 0.0) t.push_back(s);
  }
  if (t.empty()) return 0.0;
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

CalibrationSource calibrate_cost(CostModel& model, const CalibrationKey& key, const ForwardTimer& timer,
                                 const CalibrationOptions& opts, int64_t now_unix) {
  const std::string dir = opts.cache_dir.empty() ? default_calibration_dir() : opts.cache_dir;
  const std::string path = calibration_cache_path(dir, key);
  if (read_cache(path, model, now_unix, opts.max_age_seconds)) return CalibrationSource::Cache;
  using Clock = std::chrono::steady_clock;
  timer(1);  // warm-up: first-touch of weights and scratch would count against one row otherwise
  // The budget starts after it: a 1B model's first forward faults in 2 GB of weights, which took
  // the whole budget, so only 1 and 2 rows were timed and every tree size was extrapolated.
  const auto t0 = Clock::now();
  for (int32_t rows : opts.rows) {
    if (rows < 1 || rows > model.max_rows()) continue;
    const double spent = std::chrono::duration<double>(Clock::now() - t0).count();
    if (rows > 2 && spent > opts.budget_seconds) break;
    if (const double s = median_seconds(timer, rows, opts.reps); s > 0.0) model.set(rows, s);
  }
  if (model.measured()) write_cache(path, model, now_unix);
  return CalibrationSource::Measured;
}

}  // namespace specd::daemon
