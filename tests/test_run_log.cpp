// Tests of the run log: field round trip, id assignment under threads, queries, retention, reopen,
// schema-version and not-a-database refusals, queue overflow accounting, WAL mode, start rows
// replaced by final rows, the interrupted sweep at open and durability notices.
#include "daemon/run_log.h"
#include "tests/test_support.h"

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace specd;
using namespace specd::test;
using specd::daemon::RunLog;
using specd::daemon::RunLogOptions;
using specd::daemon::RunQuery;
using specd::daemon::RunRecord;

namespace {

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

RunLogOptions options_in(const std::string& dir) {
  RunLogOptions o;
  o.path = dir + "/runs.db";
  o.flush_interval_ms = 5;  // keep the tests quick; batching is still exercised by bursts
  return o;
}

std::unique_ptr<RunLog> open_ok(const RunLogOptions& o) {
  auto r = RunLog::open(o);
  REQUIRE_MESSAGE(r.has_value(), (r.has_value() ? "" : r.error().message));
  return std::move(r.value());
}

RunRecord record(const std::string& model, const std::string& decoder, int64_t started) {
  RunRecord r;
  r.started_unix_ms = started;
  r.finished_unix_ms = started + 10;
  r.model = model;
  r.decoder = decoder;
  r.finish_reason = "length";
  return r;
}

// Spelled out rather than designated initializers, which -Wmissing-field-initializers flags.
RunQuery query_of(int32_t last, const std::string& decoder = "", const std::string& model = "", int64_t since = 0) {
  RunQuery q;
  q.last = last;
  q.decoder = decoder;
  q.model = model;
  q.since_unix_ms = since;
  return q;
}

std::vector<RunRecord> query_ok(const RunLog& log, const RunQuery& q) {
  auto r = log.query(q);
  REQUIRE_MESSAGE(r.has_value(), (r.has_value() ? "" : r.error().message));
  return r.value();
}

// Runs one statement yielding a single row on a connection of the test's own, outside RunLog.
std::string sql_scalar(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    out = t ? t : "";
  }
  sqlite3_finalize(st);
  sqlite3_close_v2(db);
  return out;
}

}  // namespace

TEST_CASE("run_log: every field survives the round trip") {
  const auto o = options_in(temp_dir());
  auto log = open_ok(o);
  RunRecord r;
  r.started_unix_ms = now_ms() - 1234;
  r.finished_unix_ms = now_ms();
  r.peer_uid = 1000;
  r.peer_pid = 4242;
  r.model = "stories260K";
  r.decoder = "ngram";
  r.decoder_options = R"({"n":3,"k":"v\"q"})";
  r.prompt_tokens = 17;
  r.generated_tokens = 200;
  r.forwards = 61;
  r.accepted_hist = "[1,2,0,5]";
  r.ttft_ms = 3.25;
  r.decode_tok_s = 812.5;
  r.finish_reason = "error";
  r.error = std::string("KV_FULL: kv cache full \xe2\x9c\x93 with a \0 inside", 42);
  r.auto_settings = R"({"k=4":12,"plain":3})";
  const int64_t id = log->append(r).id;
  CHECK(id >= 1);
  log->flush();
  const auto rows = query_ok(*log, {});
  REQUIRE(rows.size() == 1);
  const RunRecord& g = rows[0];
  CHECK(g.id == id);
  CHECK(g.started_unix_ms == r.started_unix_ms);
  CHECK(g.finished_unix_ms == r.finished_unix_ms);
  CHECK(g.peer_uid == r.peer_uid);
  CHECK(g.peer_pid == r.peer_pid);
  CHECK(g.model == r.model);
  CHECK(g.decoder == r.decoder);
  CHECK(g.decoder_options == r.decoder_options);
  CHECK(g.prompt_tokens == r.prompt_tokens);
  CHECK(g.generated_tokens == r.generated_tokens);
  CHECK(g.forwards == r.forwards);
  CHECK(g.accepted_hist == r.accepted_hist);
  CHECK(g.ttft_ms == r.ttft_ms);
  CHECK(g.decode_tok_s == r.decode_tok_s);
  CHECK(g.finish_reason == r.finish_reason);
  CHECK(g.error == r.error);
  CHECK(g.auto_settings == r.auto_settings);
  CHECK(log->dropped() == 0);
}

TEST_CASE("run_log: a version-3 log gains auto_settings, '{}' on its old rows (migration 4)") {
  const auto o = options_in(temp_dir());
  {
    auto log = open_ok(o);
    RunRecord r;
    r.started_unix_ms = r.finished_unix_ms = now_ms();  // inside retention
    r.decoder = "ar";
    r.finish_reason = "length";
    log->append(r);
    log->flush();
  }
  // Back to what a version-3 daemon left: no auto_settings column.
  sql_scalar(o.path, "ALTER TABLE runs DROP COLUMN auto_settings");
  sql_scalar(o.path, "PRAGMA user_version=3");
  REQUIRE(sql_scalar(o.path, "SELECT COUNT(*) FROM pragma_table_info('runs') WHERE name = 'auto_settings'") == "0");
  auto log = open_ok(o);
  CHECK(sql_scalar(o.path, "PRAGMA user_version") == "4");
  const auto rows = query_ok(*log, {});
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].decoder == "ar");
  CHECK(rows[0].auto_settings == "{}");
}

TEST_CASE("run_log: ids are unique and monotonic per thread across 4 appending threads") {
  const auto o = options_in(temp_dir());
  auto log = open_ok(o);
  constexpr int kThreads = 4, kEach = 500;
  const char* const kModels[kThreads] = {"m0", "m1", "m2", "m3"};
  std::vector<std::vector<int64_t>> ids(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i)
          ids[t].push_back(log->append(record(kModels[t], "plain", now_ms())).id);
      });
  }
  std::set<int64_t> all;
  for (const auto& v : ids) {
    CHECK(std::is_sorted(v.begin(), v.end()));
    all.insert(v.begin(), v.end());
  }
  CHECK(all.size() == size_t{kThreads * kEach});
  log->flush();
  CHECK(log->dropped() == 0);  // 2000 records never fill a 4096-slot queue
  const auto rows = query_ok(*log, query_of(10000));
  REQUIRE(rows.size() == size_t{kThreads * kEach});
  std::set<int64_t> stored;
  for (const auto& r : rows) stored.insert(r.id);
  CHECK(stored == all);
  CHECK(std::is_sorted(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.id > b.id; }));
}

TEST_CASE("run_log: queries filter by decoder, model and time, newest first, limit clamped") {
  const auto o = options_in(temp_dir());
  auto log = open_ok(o);
  const int64_t t0 = now_ms() - 100000;
  for (int i = 0; i < 30; ++i)
    log->append(record(i % 2 ? "a" : "b", i % 3 ? "plain" : "ngram", t0 + i * 1000));
  log->flush();
  auto all = query_ok(*log, query_of(100));
  REQUIRE(all.size() == 30);
  CHECK(all.front().started_unix_ms == t0 + 29000);
  CHECK(query_ok(*log, {}).size() == 20);  // the default
  CHECK(query_ok(*log, query_of(0)).size() == 1);
  CHECK(query_ok(*log, query_of(-5)).size() == 1);
  CHECK(query_ok(*log, query_of(1 << 30)).size() == 30);

  const auto ngram = query_ok(*log, query_of(100, "ngram"));
  CHECK(ngram.size() == 10);
  for (const auto& r : ngram) CHECK(r.decoder == "ngram");
  const auto a_plain = query_ok(*log, query_of(100, "plain", "a"));
  CHECK(a_plain.size() == 10);  // odd i (a) that are not multiples of 3: 15 odd - 5 odd multiples of 3
  for (const auto& r : a_plain) CHECK((r.model == "a" && r.decoder == "plain"));
  const auto recent = query_ok(*log, query_of(3, "", "", t0 + 20000));
  REQUIRE(recent.size() == 3);
  CHECK(recent[0].started_unix_ms == t0 + 29000);
  CHECK(recent[2].started_unix_ms == t0 + 27000);
  CHECK(query_ok(*log, query_of(100, "", "", t0 + 20000)).size() == 10);
  CHECK(query_ok(*log, query_of(100, "", "nope")).empty());
}

TEST_CASE("run_log: retention keeps the newest max_rows") {
  auto o = options_in(temp_dir());
  o.max_rows = 10;
  auto log = open_ok(o);
  int64_t last = 0;
  for (int i = 0; i < 25; ++i) last = log->append(record("m", "plain", now_ms())).id;
  log->flush();
  const auto rows = query_ok(*log, query_of(100));
  REQUIRE(rows.size() == 10);
  CHECK(rows.front().id == last);
  CHECK(rows.back().id == last - 9);
}

TEST_CASE("run_log: retention drops rows older than max_age_days") {
  auto o = options_in(temp_dir());
  o.max_age_days = 7;
  auto log = open_ok(o);
  const int64_t day = 86400000;
  for (int i = 0; i < 5; ++i) log->append(record("m", "old", now_ms() - 8 * day - i));
  for (int i = 0; i < 4; ++i) log->append(record("m", "new", now_ms() - 6 * day + i));
  log->flush();
  const auto rows = query_ok(*log, query_of(100));
  CHECK(rows.size() == 4);
  for (const auto& r : rows) CHECK(r.decoder == "new");
}

TEST_CASE("run_log: reopening keeps the rows and continues the ids, never reusing trimmed ones") {
  const std::string dir = temp_dir();
  auto o = options_in(dir);
  int64_t last = 0;
  {
    auto log = open_ok(o);
    for (int i = 0; i < 7; ++i) last = log->append(record("m", "plain", now_ms())).id;
    // No flush: the destructor must write what is queued.
  }
  {
    auto log = open_ok(o);
    CHECK(query_ok(*log, query_of(100)).size() == 7);
    const int64_t next = log->append(record("m", "old", 1)).id;  // older than any max_age: trimmed
    CHECK(next == last + 1);
    last = next;
    log->flush();
    CHECK(query_ok(*log, query_of(100)).size() == 7);
  }
  o.max_age_days = 1;
  {
    auto log = open_ok(o);
    log->append(record("m", "old", 1));
    log->flush();
    CHECK(query_ok(*log, query_of(100)).size() == 7);
  }
  {
    // The two highest ids so far (last, last + 1) were trimmed away; sqlite_sequence remembers them.
    auto log = open_ok(o);
    CHECK(log->append(record("m", "plain", now_ms())).id == last + 2);
  }
}

TEST_CASE("run_log: a newer schema version is refused with SPECD_E_VERSION") {
  const auto o = options_in(temp_dir());
  { auto log = open_ok(o); }
  const int32_t newer = RunLog::schema_version() + 1;
  sql_scalar(o.path, "PRAGMA user_version=" + std::to_string(newer));
  auto r = RunLog::open(o);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == SPECD_E_VERSION);
  INFO(r.error().message);
  CHECK(r.error().message.find(std::to_string(newer)) != std::string::npos);
  CHECK(r.error().message.find(o.path) != std::string::npos);
}

TEST_CASE("run_log: a file that is not a database is refused with SPECD_E_IO") {
  const auto o = options_in(temp_dir());
  std::vector<uint8_t> junk(8192);
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<uint8_t>(i * 131 + 7);
  write_file(o.path, junk);
  auto r = RunLog::open(o);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == SPECD_E_IO);
  INFO(r.error().message);
  CHECK(r.error().message.find("not an SQLite database") != std::string::npos);
  CHECK(read_file(o.path) == junk);  // left untouched

  auto missing = options_in(temp_dir() + "/no/such/dir");
  auto m = RunLog::open(missing);
  REQUIRE_FALSE(m.has_value());
  CHECK(m.error().code == SPECD_E_IO);
}

TEST_CASE("run_log: a full queue counts every record it cannot take") {
  auto o = options_in(temp_dir());
  o.queue_capacity = 4;
  o.batch_max = 1;
  auto log = open_ok(o);
  // Another connection holds the write lock, so the writer stalls in BEGIN IMMEDIATE (busy timeout).
  sqlite3* blocker = nullptr;
  REQUIRE(sqlite3_open_v2(o.path.c_str(), &blocker, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_exec(blocker, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  constexpr int kAppended = 16;
  uint64_t no_wait = 0;
  for (int i = 0; i < kAppended; ++i) no_wait += log->append(record("m", "plain", now_ms())).seq == 0;
  const uint64_t dropped = log->dropped();
  CHECK(no_wait == dropped);  // a dropped record's ticket has nothing to wait for
  CHECK(dropped >= kAppended - 5);  // at most 4 queued plus 1 in the stalled batch
  sqlite3_exec(blocker, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close_v2(blocker);
  log->flush();
  const auto written = query_ok(*log, query_of(100)).size();
  CHECK(written + dropped == size_t{kAppended});
  CHECK(log->dropped() == dropped);
}

TEST_CASE("run_log: a burst from many threads is written or counted, never lost silently") {
  auto o = options_in(temp_dir());
  o.queue_capacity = 64;
  o.max_rows = 0;
  auto log = open_ok(o);
  constexpr int kThreads = 4, kEach = 2500;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&] {
        for (int i = 0; i < kEach; ++i) log->append(record("m", "plain", now_ms()));
      });
  }
  log->flush();
  const std::string n = sql_scalar(o.path, "SELECT COUNT(*) FROM runs");
  MESSAGE("burst: " << n << " written, " << log->dropped() << " dropped");
  CHECK(std::stoull(n) + log->dropped() == uint64_t{kThreads * kEach});
}

TEST_CASE("run_log: the database is in WAL mode at the current schema version") {
  const auto o = options_in(temp_dir());
  auto log = open_ok(o);
  CHECK(sql_scalar(o.path, "PRAGMA journal_mode") == "wal");
  CHECK(sql_scalar(o.path, "PRAGMA user_version") == std::to_string(RunLog::schema_version()));
  CHECK(RunLog::schema_version() >= 1);
  for (const char* idx : {"runs_started", "runs_decoder", "runs_model"})
    CHECK(sql_scalar(o.path, std::string("SELECT name FROM sqlite_master WHERE type='index' AND name='") + idx +
                                 "'") == idx);
}

TEST_CASE("run_log: a start row is replaced by its final row under the same id") {
  const auto o = options_in(temp_dir());
  auto log = open_ok(o);
  RunRecord start = record("m", "ar", now_ms());
  start.finish_reason = "running";
  start.finished_unix_ms = 0;
  const daemon::RunTicket t = log->append(start);
  CHECK(t.id >= 1);
  CHECK(t.seq >= 1);
  log->flush();
  CHECK(log->durable_seq() >= t.seq);
  auto rows = query_ok(*log, {});
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].finish_reason == "running");
  RunRecord last = record("m", "ar", start.started_unix_ms);
  last.id = t.id;
  last.generated_tokens = 42;
  const daemon::RunTicket t2 = log->append(last);
  CHECK(t2.id == t.id);
  CHECK(t2.seq > t.seq);
  log->flush();
  rows = query_ok(*log, {});
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].id == t.id);
  CHECK(rows[0].finish_reason == "length");
  CHECK(rows[0].generated_tokens == 42);
  // The next new id is past the replaced one.
  CHECK(log->append(record("m", "ar", now_ms())).id == t.id + 1);
}

TEST_CASE("run_log: rows a stopped daemon left running are marked interrupted at the next open") {
  const auto o = options_in(temp_dir());
  int64_t running_id = 0, done_id = 0;
  {
    auto log = open_ok(o);
    RunRecord start = record("m", "ar", now_ms());
    start.finish_reason = "running";
    running_id = log->append(start).id;
    done_id = log->append(record("m", "ar", now_ms())).id;
    log->flush();
    CHECK(log->interrupted_at_open() == 0);
  }
  auto log = open_ok(o);
  CHECK(log->interrupted_at_open() == 1);
  const auto rows = query_ok(*log, {});
  REQUIRE(rows.size() == 2);
  for (const RunRecord& r : rows) {
    if (r.id == running_id) {
      CHECK(r.finish_reason == "interrupted");
      CHECK(r.error.find("INTERRUPTED") == 0);
      CHECK(r.finished_unix_ms >= r.started_unix_ms);
    } else {
      CHECK(r.id == done_id);
      CHECK(r.finish_reason == "length");
    }
  }
  CHECK(sql_scalar(o.path, "SELECT COUNT(*) FROM runs WHERE finish_reason = 'running'") == "0");
  CHECK(log->append(record("m", "ar", now_ms())).id == done_id + 1);
}

TEST_CASE("run_log: durable_seq reaches every ticket and the durability notice fires") {
  auto o = options_in(temp_dir());
  o.flush_interval_ms = 0;
  auto log = open_ok(o);
  static std::atomic<int> notices{0};
  notices = 0;
  log->set_on_durable([](void*) { notices.fetch_add(1); }, nullptr);
  daemon::RunTicket last;
  for (int i = 0; i < 50; ++i) last = log->append(record("m", "ar", now_ms()));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (log->durable_seq() < last.seq && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(log->durable_seq() >= last.seq);
  CHECK(notices.load() >= 1);
  // Durable means committed: a connection of the test's own sees every row.
  CHECK(sql_scalar(o.path, "SELECT COUNT(*) FROM runs") == "50");
  log->set_on_durable(nullptr, nullptr);
  const int before = notices.load();
  log->append(record("m", "ar", now_ms()));
  log->flush();
  CHECK(notices.load() == before);
}

TEST_CASE("run_log: synchronous=FULL opens and writes like NORMAL") {
  auto o = options_in(temp_dir());
  o.sync_full = true;
  auto log = open_ok(o);
  const int64_t id = log->append(record("m", "ar", now_ms())).id;
  log->flush();
  const auto rows = query_ok(*log, {});
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].id == id);
}

TEST_CASE("run_log: a new database and its WAL are never world-readable, whatever the umask") {
  const auto o = options_in(temp_dir());
  const mode_t old = ::umask(0);  // the widest umask: the log's own mode must hold
  auto log = open_ok(o);
  ::umask(old);
  log->append(record("m", "ar", now_ms()));
  log->flush();
  for (const std::string& f : {o.path, o.path + "-wal"}) {
    CAPTURE(f);
    struct stat st {};
    REQUIRE(::stat(f.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0640);
  }
}
