// RunLog: every request's record in SQLite, written by its own thread in batched transactions.
//
// docs: ARCHITECTURE.md §6. One database file in WAL mode, schema version in PRAGMA user_version
// with forward migrations. append() never blocks the caller on SQLite: records go through a
// bounded queue; when it is full append() waits up to a short bound and then counts the record as
// dropped (reported by dropped() and in ListRuns), never silently. Retention trims by row count
// and by age after each batch.
#pragma once

#include "engine/result.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace specd::daemon {

struct RunRecord {
  int64_t id = 0;                 // assigned by append()
  int64_t started_unix_ms = 0;
  int64_t finished_unix_ms = 0;
  int32_t peer_uid = -1;
  int32_t peer_pid = -1;
  std::string model;
  std::string decoder;
  std::string decoder_options;    // JSON
  int32_t prompt_tokens = 0;
  int32_t generated_tokens = 0;
  int32_t forwards = 0;
  std::string accepted_hist;      // JSON array
  double ttft_ms = 0.0;
  double decode_tok_s = 0.0;
  std::string finish_reason;      // "length" | "stop" | ... | "error"
  std::string error;              // "NAME: message" when finish_reason == "error"
};

struct RunQuery {
  int32_t last = 20;              // newest first, at most this many
  std::string decoder;            // empty: any
  std::string model;              // empty: any
  int64_t since_unix_ms = 0;
};

struct RunLogOptions {
  std::string path;               // the database file (its directory must exist)
  int64_t max_rows = 100000;      // 0: unlimited
  int64_t max_age_days = 90;      // 0: unlimited
  size_t queue_capacity = 4096;
  int32_t batch_max = 256;        // records per transaction
  int32_t flush_interval_ms = 200;
};

class RunLog {
 public:
  // Opens (creating or migrating) the database and starts the writer thread.
  // Errors: SPECD_E_IO (cannot open/create), SPECD_E_VERSION (a newer schema than this build knows).
  static Result<std::unique_ptr<RunLog>> open(const RunLogOptions& opts);
  ~RunLog();  // flushes and joins

  // Queue a record; returns its id (ids are assigned here, monotonically, so the caller can
  // report it before the row is written). Thread-safe.
  int64_t append(RunRecord rec);
  // Block until everything appended so far is written (for SIGTERM drain and tests). Thread-safe.
  void flush();
  // Query on a separate read connection (WAL readers don't block the writer). Thread-safe.
  Result<std::vector<RunRecord>> query(const RunQuery& q) const;
  uint64_t dropped() const;
  static int32_t schema_version();  // what this build writes

 private:
  RunLog() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace specd::daemon
