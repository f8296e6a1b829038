// RunLog: every request's record in SQLite, written by its own thread in group commits.
//
// docs: ARCHITECTURE.md §6. One database file in WAL mode, schema version in PRAGMA user_version
// with forward migrations. append() never blocks the caller on SQLite: records go through a
// bounded queue; when it is full append() waits up to a short bound and then counts the record as
// dropped (reported by dropped() and in ListRuns), never silently. Retention trims by row count
// and by age after each batch.
//
// Durability. A record is durable once durable_seq() has reached its ticket's seq: its transaction
// has committed (or it was counted as dropped). The daemon holds back every frame about a run until
// the record behind it is durable, which gives the promise stated in README.md ("The run log"):
// - kill -9 or any crash of the process: every run whose Finished or Error reached its client has
//   its final row, and every run from which the client received anything has at least its start
//   row; start rows still marked "running" are marked "interrupted" by the next open();
// - ids come from AUTOINCREMENT's high-water mark and are never handed out twice, across restarts,
//   crashes and retention (an id is only ever reported once its row has committed);
// - a power cut or OS crash: with synchronous = "normal" (the default) the transactions committed
//   since the WAL was last synced (checkpoints) may roll back, leaving a consistent, older log;
//   with synchronous = "full" every commit is fsynced first, so the promise above holds there too.
#pragma once

#include "kernels/result.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace specd::daemon {

struct RunRecord {
  int64_t id = 0;                 // 0: append() assigns a new id; else the row append() replaces
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
  std::string finish_reason;      // "running" | "length" | "stop" | ... | "error" | "interrupted"
  std::string error;              // "NAME: message" when finish_reason == "error"
  std::string via = "socket";     // how the request came in: "socket" or "http"
  std::string auto_settings = "{}";  // JSON object: steps per setting an `auto` decoder chose
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
  // How long the writer lets records gather before it commits. 0: commit as soon as the writer is
  // free; records that arrive during a commit go together in the next (group commit). Frames wait
  // for their records, so this adds directly to every request's latency.
  int32_t flush_interval_ms = 0;
  bool sync_full = false;         // PRAGMA synchronous=FULL (power-cut durability) instead of NORMAL
};

// What append() queued: the row's id and the seq that durable_seq() reaches once it is written.
struct RunTicket {
  int64_t id = 0;
  uint64_t seq = 0;               // 0: nothing to wait for (the record was dropped)
};

class RunLog {
 public:
  // Opens (creating or migrating) the database, marks the rows a crashed daemon left "running" as
  // "interrupted" and starts the writer thread.
  // Errors: SPECD_E_IO (cannot open/create), SPECD_E_VERSION (a newer schema than this build knows).
  static Result<std::unique_ptr<RunLog>> open(const RunLogOptions& opts);
  ~RunLog();  // flushes and joins

  // Queue a record: rec.id 0 inserts a row under a new id (monotonic, assigned here); an id from an
  // earlier append() replaces that row (a run's start row by its final one). Thread-safe.
  RunTicket append(RunRecord rec);
  // Every record whose ticket seq is at most this is committed or counted as dropped. Thread-safe.
  uint64_t durable_seq() const;
  // fn(user) is called on the writer thread after each batch, once durable_seq() has advanced; fn
  // must be quick and thread-safe (e.g. uv_async_send). Once set_on_durable(nullptr, nullptr)
  // returns, no call is running or will be made. Thread-safe.
  void set_on_durable(void (*fn)(void*), void* user);
  // Block until everything appended so far is written (for SIGTERM drain and tests). Thread-safe.
  void flush();
  // How many "running" rows open() found and marked "interrupted".
  int64_t interrupted_at_open() const;
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
