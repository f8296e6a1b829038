// RunLog: the bounded record queue, the writer thread that group-commits records and retention,
// durability notices, the "interrupted" sweep at open, and queries.
#include "daemon/run_log.h"

#include "daemon/run_log_schema.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

namespace specd::daemon {

using runlog::Db;
using runlog::Stmt;

namespace {

using Clock = std::chrono::steady_clock;

// append() waits this long for a free slot before it counts the record as dropped: long enough to
// ride out one slow commit, short enough that a stuck disk never stalls the loop thread for long.
constexpr auto kAppendWait = std::chrono::milliseconds(50);
// Retention runs at most this often; a flush (drain, tests) always applies it.
constexpr auto kRetentionEvery = std::chrono::seconds(1);
constexpr int32_t kMaxQueryRows = 10000;
constexpr int64_t kMsPerDay = 86400000;

int64_t now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

RunLogOptions sanitized(RunLogOptions o) {
  o.queue_capacity = std::max<size_t>(o.queue_capacity, 1);
  o.batch_max = std::max<int32_t>(o.batch_max, 1);
  o.flush_interval_ms = std::max<int32_t>(o.flush_interval_ms, 0);
  o.max_rows = std::max<int64_t>(o.max_rows, 0);
  o.max_age_days = std::max<int64_t>(o.max_age_days, 0);
  return o;
}

}  // namespace

struct RunLog::Impl {
  RunLogOptions opts;

  // Writer thread only once open() has returned.
  Db wdb;
  Stmt insert, trim_rows, trim_age;
  Clock::time_point last_trim{};

  mutable std::mutex read_mu;
  Db rdb;  // guarded by read_mu

  std::atomic<int64_t> next_id{1};
  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> durable{0};  // == finished, readable without the lock
  int64_t interrupted = 0;           // set by open(), read-only afterwards
  void (*on_durable)(void*) = nullptr;  // guarded by mu
  void* on_durable_user = nullptr;      // guarded by mu

  std::mutex mu;
  std::condition_variable work_cv;   // writer: records, a flush request or stop
  std::condition_variable space_cv;  // append(): slots were freed
  std::condition_variable done_cv;   // flush(): a batch finished
  // A ring of slots sized once at open, so a queued record moves its strings in and nothing grows.
  std::vector<RunRecord> ring;       // guarded by mu
  size_t head = 0;                   // guarded by mu
  size_t count = 0;                  // guarded by mu
  uint64_t pushed = 0;               // guarded by mu: records ever queued
  uint64_t finished = 0;             // guarded by mu: records taken and written (or counted lost)
  uint64_t trimmed_through = 0;      // guarded by mu: `finished` when retention last ran
  int32_t flush_waiters = 0;         // guarded by mu
  bool stopping = false;             // guarded by mu

  std::jthread writer;  // started last in open(), stopped first in ~Impl

  ~Impl();
  Status prepare_statements();
  Status load_next_id();
  Status mark_interrupted();
  bool trim_owed() const;
  void run();
  void take(std::vector<RunRecord>& batch);
  void write(const std::vector<RunRecord>& batch, bool trim);
  Status write_txn(const std::vector<RunRecord>& batch, bool trim);
  Status step_done(sqlite3_stmt* st, const char* what);
};

RunLog::Impl::~Impl() {
  if (!writer.joinable()) return;
  {
    std::lock_guard lk(mu);
    stopping = true;
  }
  work_cv.notify_all();
  writer.join();  // the writer drains the queue before it returns
}

Status RunLog::Impl::prepare_statements() {
  const std::string cols = runlog::kRunColumns;
  auto ins = runlog::prepare(wdb.get(),
                             "INSERT OR REPLACE INTO runs (" + cols + ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
                             "?12, ?13, ?14, ?15, ?16, ?17, ?18)", true);
  if (!ins) return ins.error();
  insert = std::move(*ins);
  // Keeps the max_rows highest ids: the subquery is NULL (nothing deleted) while there are fewer.
  auto rows = runlog::prepare(wdb.get(), "DELETE FROM runs WHERE id <= (SELECT id FROM runs ORDER BY id DESC "
                                         "LIMIT 1 OFFSET ?1)", true);
  if (!rows) return rows.error();
  trim_rows = std::move(*rows);
  auto age = runlog::prepare(wdb.get(), "DELETE FROM runs WHERE started_unix_ms < ?1", true);
  if (!age) return age.error();
  trim_age = std::move(*age);
  return {};
}

// sqlite_sequence remembers the highest id ever written, so ids continue past rows retention removed.
Status RunLog::Impl::load_next_id() {
  auto st = runlog::prepare(wdb.get(),
                            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'runs'), 0), "
                            "COALESCE((SELECT MAX(id) FROM runs), 0)) + 1");
  if (!st) return st.error();
  if (sqlite3_step(st->get()) != SQLITE_ROW) return runlog::sql_error(wdb.get(), "run log: read the next id");
  next_id.store(sqlite3_column_int64(st->get(), 0));
  return {};
}

// A daemon that died (kill -9, crash, power cut) left its runs in flight as "running" start rows:
// they are closed here so they read as what they were, never as still going.
Status RunLog::Impl::mark_interrupted() {
  auto st = runlog::prepare(wdb.get(),
                            "UPDATE runs SET finish_reason = 'interrupted', finished_unix_ms = ?1, "
                            "error = 'INTERRUPTED: the daemon stopped (crash or kill) while the run was in flight' "
                            "WHERE finish_reason = 'running'");
  if (!st) return st.error();
  sqlite3_bind_int64(st->get(), 1, now_unix_ms());
  SPECD_TRY(step_done(st->get(), "run log: mark interrupted runs"));
  interrupted = sqlite3_changes64(wdb.get());
  return {};
}

Status RunLog::Impl::step_done(sqlite3_stmt* st, const char* what) {
  const int rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (rc == SQLITE_DONE) return {};
  return runlog::sql_error(wdb.get(), what);
}

Status RunLog::Impl::write_txn(const std::vector<RunRecord>& batch, bool trim) {
  for (const auto& r : batch) {
    runlog::bind_record(insert.get(), r);
    SPECD_TRY(step_done(insert.get(), "run log: insert"));
  }
  if (!trim) return {};
  if (opts.max_rows > 0) {
    sqlite3_bind_int64(trim_rows.get(), 1, opts.max_rows);
    SPECD_TRY(step_done(trim_rows.get(), "run log: trim by rows"));
  }
  if (opts.max_age_days > 0) {
    sqlite3_bind_int64(trim_age.get(), 1, now_unix_ms() - opts.max_age_days * kMsPerDay);
    SPECD_TRY(step_done(trim_age.get(), "run log: trim by age"));
  }
  return {};
}

// One transaction per batch. A batch that cannot be written is counted as dropped and reported on
// stderr; the writer carries on, since the next batch may well succeed (disk space freed, lock gone).
void RunLog::Impl::write(const std::vector<RunRecord>& batch, bool trim) {
  const bool retention = opts.max_rows > 0 || opts.max_age_days > 0;
  if (batch.empty() && !(trim && retention)) return;
  Status s;
  try {
    s = runlog::exec(wdb.get(), "BEGIN IMMEDIATE", "run log: begin");
    if (s) s = write_txn(batch, trim);
    if (s) s = runlog::exec(wdb.get(), "COMMIT", "run log: commit");
  } catch (const std::exception& e) {
    s = make_error(SPECD_E_INTERNAL, "run log: %s", e.what());
  }
  if (s) {
    if (trim) last_trim = Clock::now();
    return;
  }
  if (!sqlite3_get_autocommit(wdb.get())) (void)runlog::exec(wdb.get(), "ROLLBACK", "run log: roll back");
  dropped.fetch_add(batch.size());
  std::fprintf(stderr, "specd: run log %s: %zu records lost: %s\n", opts.path.c_str(), batch.size(),
               s.error().message.c_str());
}

void RunLog::Impl::take(std::vector<RunRecord>& batch) {
  const size_t n = std::min(count, static_cast<size_t>(opts.batch_max));
  for (size_t i = 0; i < n; ++i) {
    batch.push_back(std::move(ring[head]));
    head = (head + 1) % ring.size();
  }
  count -= n;
}

// Whether a waiting flush() still needs retention applied over what has been written.
bool RunLog::Impl::trim_owed() const { return flush_waiters > 0 && trimmed_through < finished; }

void RunLog::Impl::run() {
  std::vector<RunRecord> batch;
  batch.reserve(static_cast<size_t>(opts.batch_max));
  const auto gather = std::chrono::milliseconds(opts.flush_interval_ms);
  const auto batch_full = static_cast<size_t>(opts.batch_max);
  for (;;) {
    bool trim = false;
    {
      std::unique_lock lk(mu);
      work_cv.wait(lk, [&] { return stopping || count > 0 || trim_owed(); });
      if (count == 0 && !trim_owed()) return;  // stopping, and everything is written
      // A trickle of records gathers into one transaction unless someone is waiting for it.
      if (count > 0)
        work_cv.wait_for(lk, gather, [&] { return stopping || flush_waiters > 0 || count >= batch_full; });
      take(batch);
      trim = stopping || flush_waiters > 0 || Clock::now() - last_trim >= kRetentionEvery;
    }
    space_cv.notify_all();
    write(batch, trim);
    {
      std::lock_guard lk(mu);
      finished += batch.size();
      durable.store(finished);
      if (trim) trimmed_through = finished;
      // Under the lock, so once set_on_durable(nullptr, ...) returns no call is still running.
      if (on_durable && !batch.empty()) on_durable(on_durable_user);
    }
    done_cv.notify_all();
    batch.clear();
  }
}

Result<std::unique_ptr<RunLog>> RunLog::open(const RunLogOptions& options) {
  if (options.path.empty()) return make_error(SPECD_E_INVALID_ARG, "run log: no database path given");
  auto impl = std::make_unique<Impl>();
  impl->opts = sanitized(options);
  auto w = runlog::open_writer(impl->opts.path, impl->opts.sync_full);
  if (!w) return w.error();
  impl->wdb = std::move(*w);
  SPECD_TRY(impl->prepare_statements());
  SPECD_TRY(impl->load_next_id());
  SPECD_TRY(impl->mark_interrupted());
  auto r = runlog::open_reader(impl->opts.path);
  if (!r) return r.error();
  impl->rdb = std::move(*r);
  impl->ring.resize(impl->opts.queue_capacity);
  impl->last_trim = Clock::now() - kRetentionEvery;  // trim once soon after start
  impl->writer = std::jthread([p = impl.get()] { p->run(); });
  std::unique_ptr<RunLog> log(new RunLog());  // the constructor is private; owned at once
  log->impl_ = std::move(impl);
  return log;
}

RunLog::~RunLog() = default;  // ~Impl drains the queue and joins the writer

RunTicket RunLog::append(RunRecord rec) {
  Impl& m = *impl_;
  if (rec.id == 0) rec.id = m.next_id.fetch_add(1);
  RunTicket t{rec.id, 0};
  bool wake = false;
  {
    std::unique_lock lk(m.mu);
    if (!m.space_cv.wait_for(lk, kAppendWait, [&] { return m.count < m.ring.size(); })) {
      m.dropped.fetch_add(1);
      return t;
    }
    m.ring[(m.head + m.count) % m.ring.size()] = std::move(rec);
    ++m.count;
    t.seq = ++m.pushed;
    // The writer only needs waking when work appears or a batch fills; it re-checks otherwise.
    wake = m.count == 1 || m.count == static_cast<size_t>(m.opts.batch_max);
  }
  if (wake) m.work_cv.notify_one();
  return t;
}

uint64_t RunLog::durable_seq() const { return impl_->durable.load(); }

void RunLog::set_on_durable(void (*fn)(void*), void* user) {
  std::lock_guard lk(impl_->mu);
  impl_->on_durable = fn;
  impl_->on_durable_user = user;
}

int64_t RunLog::interrupted_at_open() const { return impl_->interrupted; }

// Waits for the records queued before the call, and for retention over them, so a flush leaves
// the table as the options say it should be (tests and the SIGTERM drain rely on that).
void RunLog::flush() {
  Impl& m = *impl_;
  std::unique_lock lk(m.mu);
  const uint64_t target = m.pushed;
  const auto done = [&] { return m.finished >= target && m.trimmed_through >= target; };
  if (done()) return;
  ++m.flush_waiters;
  m.work_cv.notify_one();
  m.done_cv.wait(lk, done);
  --m.flush_waiters;
}

Result<std::vector<RunRecord>> RunLog::query(const RunQuery& q) const {
  std::string sql = std::string("SELECT ") + runlog::kRunColumns + " FROM runs WHERE started_unix_ms >= ?1";
  if (!q.decoder.empty()) sql += " AND decoder = ?2";
  if (!q.model.empty()) sql += " AND model = ?3";
  sql += " ORDER BY id DESC LIMIT ?4";
  const int32_t limit = std::clamp(q.last, int32_t{1}, kMaxQueryRows);

  std::lock_guard lk(impl_->read_mu);
  sqlite3* db = impl_->rdb.get();
  auto st = runlog::prepare(db, sql);
  if (!st) return st.error();
  sqlite3_stmt* s = st->get();
  sqlite3_bind_int64(s, 1, q.since_unix_ms);
  if (!q.decoder.empty()) sqlite3_bind_text64(s, 2, q.decoder.data(), q.decoder.size(), SQLITE_STATIC, SQLITE_UTF8);
  if (!q.model.empty()) sqlite3_bind_text64(s, 3, q.model.data(), q.model.size(), SQLITE_STATIC, SQLITE_UTF8);
  sqlite3_bind_int(s, 4, limit);
  std::vector<RunRecord> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(runlog::read_record(s));
  if (rc != SQLITE_DONE) return runlog::sql_error(db, "run log: query");
  return out;
}

uint64_t RunLog::dropped() const { return impl_->dropped.load(); }

int32_t RunLog::schema_version() { return runlog::schema_version(); }

}  // namespace specd::daemon
