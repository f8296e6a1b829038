// RunLog storage layer: opening connections, WAL set-up and the forward migrations of the runs table.
#include "daemon/run_log_schema.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iterator>
#include <utility>

namespace specd::daemon::runlog {

namespace {

// How long a statement retries on SQLITE_BUSY (another process, a checkpoint) before failing.
constexpr int kBusyTimeoutMs = 5000;

// Migration i takes the database from user_version to_version - 1 to to_version. Append only:
// a released step is never edited, since databases in the field have already run it.
struct Migration {
  int32_t to_version;
  const char* sql;
};

// REAL columns stay nullable: SQLite binds a NaN as NULL and reads NULL back as 0.0, where a
// NOT NULL constraint would reject the whole batch over one odd timing.
// AUTOINCREMENT keeps sqlite_sequence, so ids are never reused even after retention empties the table.
constexpr Migration kMigrations[] = {
    {1, R"sql(
      CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        started_unix_ms INTEGER NOT NULL,
        finished_unix_ms INTEGER NOT NULL,
        peer_uid INTEGER NOT NULL,
        peer_pid INTEGER NOT NULL,
        model TEXT NOT NULL,
        decoder TEXT NOT NULL,
        decoder_options TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        generated_tokens INTEGER NOT NULL,
        forwards INTEGER NOT NULL,
        accepted_hist TEXT NOT NULL,
        ttft_ms REAL,
        decode_tok_s REAL,
        finish_reason TEXT NOT NULL,
        error TEXT NOT NULL
      );
      CREATE INDEX runs_started ON runs(started_unix_ms);
      CREATE INDEX runs_decoder ON runs(decoder);
      CREATE INDEX runs_model ON runs(model);
    )sql"},
    // Runs are written twice: a start row ("running") when admitted, replaced by the final one. The
    // open-time sweep of rows a crash left running reads this small partial index, not the table.
    {2, R"sql(
      CREATE INDEX runs_running ON runs(id) WHERE finish_reason = 'running';
    )sql"},
    // How the request came in: "socket" (the FlatBuffers protocol; every older row) or "http".
    {3, R"sql(
      ALTER TABLE runs ADD COLUMN via TEXT NOT NULL DEFAULT 'socket';
    )sql"},
    // The settings `auto` decoders chose, steps per setting as a JSON object ("{}": none, every
    // older row) — what tells later whether speculation paid on this machine.
    {4, R"sql(
      ALTER TABLE runs ADD COLUMN auto_settings TEXT NOT NULL DEFAULT '{}';
    )sql"},
};

Result<Db> open_connection(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db(raw);  // sqlite3_open_v2 may hand back a handle even when it fails; it must still be closed
  if (rc != SQLITE_OK)
    return make_error(SPECD_E_IO, "run log %s: cannot open: %s", path.c_str(),
                      db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc));
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  return db;
}

// The first statement that reads the header is where a file that is not a database shows up.
Result<int32_t> user_version(sqlite3* db, const std::string& path) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &raw, nullptr);
  Stmt st(raw);
  if (rc == SQLITE_OK) rc = sqlite3_step(st.get());
  if (rc == SQLITE_ROW) return static_cast<int32_t>(sqlite3_column_int(st.get(), 0));
  if ((rc & 0xff) == SQLITE_NOTADB)
    return make_error(SPECD_E_IO, "run log %s: not an SQLite database (%s)", path.c_str(), sqlite3_errmsg(db));
  return make_error(SPECD_E_IO, "run log %s: cannot read the schema version: %s", path.c_str(),
                    sqlite3_errmsg(db));
}

Status check_version(int32_t found, const std::string& path) {
  if (found <= schema_version()) return {};
  return make_error(SPECD_E_VERSION,
                    "run log %s has schema version %d, newer than the %d this specd knows; "
                    "run a newer specd or move the file aside",
                    path.c_str(), found, schema_version());
}

Status enable_wal(sqlite3* db, const std::string& path, bool sync_full) {
  auto st = prepare(db, "PRAGMA journal_mode=WAL");
  if (!st) return st.error();
  if (sqlite3_step(st->get()) != SQLITE_ROW) return sql_error(db, "run log: PRAGMA journal_mode");
  const auto* mode = reinterpret_cast<const char*>(sqlite3_column_text(st->get(), 0));
  if (!mode || std::strcmp(mode, "wal") != 0)
    return make_error(SPECD_E_IO, "run log %s: cannot switch to WAL mode (journal_mode is %s)", path.c_str(),
                      mode ? mode : "unknown");
  return exec(db, sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", "run log: PRAGMA synchronous");
}

// One migration in its own write transaction. The version is re-read under the write lock so two
// processes opening the same new file do not both run a step.
Status apply(sqlite3* db, const Migration& m, const std::string& path) {
  SPECD_TRY(exec(db, "BEGIN IMMEDIATE", "run log: begin migration"));
  auto v = user_version(db, path);
  Status s = v ? Status{} : Status{v.error()};
  if (s && *v < m.to_version) {
    char set_version[64];
    std::snprintf(set_version, sizeof set_version, "PRAGMA user_version=%d", m.to_version);
    s = exec(db, m.sql, "run log: migration");
    if (s) s = exec(db, set_version, "run log: set user_version");
  }
  if (s) s = exec(db, "COMMIT", "run log: commit migration");
  if (!s) (void)exec(db, "ROLLBACK", "run log: roll back migration");
  return s;
}

}  // namespace

int32_t schema_version() { return std::prev(std::end(kMigrations))->to_version; }

Error sql_error(sqlite3* db, const char* what) {
  return make_error(SPECD_E_IO, "%s: %s", what, sqlite3_errmsg(db));
}

Status exec(sqlite3* db, const char* sql, const char* what) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) == SQLITE_OK) return {};
  Error e = make_error(SPECD_E_IO, "%s: %s", what, msg ? msg : sqlite3_errmsg(db));
  sqlite3_free(msg);
  return e;
}

Result<Stmt> prepare(sqlite3* db, const std::string& sql, bool persistent) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size() + 1),
                                    persistent ? SQLITE_PREPARE_PERSISTENT : 0, &raw, nullptr);
  Stmt st(raw);
  if (rc != SQLITE_OK) return sql_error(db, "run log: prepare");
  return st;
}

const char* const kRunColumns =
    "id, started_unix_ms, finished_unix_ms, peer_uid, peer_pid, model, decoder, decoder_options, "
    "prompt_tokens, generated_tokens, forwards, accepted_hist, ttft_ms, decode_tok_s, finish_reason, error, via, "
    "auto_settings";

namespace {
void bind_text(sqlite3_stmt* st, int i, const std::string& s) {
  sqlite3_bind_text64(st, i, s.data(), s.size(), SQLITE_STATIC, SQLITE_UTF8);
}
std::string column_text(sqlite3_stmt* st, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(st, i))) : std::string();
}
}  // namespace

void bind_record(sqlite3_stmt* st, const RunRecord& r) {
  sqlite3_bind_int64(st, 1, r.id);
  sqlite3_bind_int64(st, 2, r.started_unix_ms);
  sqlite3_bind_int64(st, 3, r.finished_unix_ms);
  sqlite3_bind_int(st, 4, r.peer_uid);
  sqlite3_bind_int(st, 5, r.peer_pid);
  bind_text(st, 6, r.model);
  bind_text(st, 7, r.decoder);
  bind_text(st, 8, r.decoder_options);
  sqlite3_bind_int(st, 9, r.prompt_tokens);
  sqlite3_bind_int(st, 10, r.generated_tokens);
  sqlite3_bind_int(st, 11, r.forwards);
  bind_text(st, 12, r.accepted_hist);
  sqlite3_bind_double(st, 13, r.ttft_ms);
  sqlite3_bind_double(st, 14, r.decode_tok_s);
  bind_text(st, 15, r.finish_reason);
  bind_text(st, 16, r.error);
  bind_text(st, 17, r.via);
  bind_text(st, 18, r.auto_settings);
}

RunRecord read_record(sqlite3_stmt* st) {
  RunRecord r;
  r.id = sqlite3_column_int64(st, 0);
  r.started_unix_ms = sqlite3_column_int64(st, 1);
  r.finished_unix_ms = sqlite3_column_int64(st, 2);
  r.peer_uid = sqlite3_column_int(st, 3);
  r.peer_pid = sqlite3_column_int(st, 4);
  r.model = column_text(st, 5);
  r.decoder = column_text(st, 6);
  r.decoder_options = column_text(st, 7);
  r.prompt_tokens = sqlite3_column_int(st, 8);
  r.generated_tokens = sqlite3_column_int(st, 9);
  r.forwards = sqlite3_column_int(st, 10);
  r.accepted_hist = column_text(st, 11);
  r.ttft_ms = sqlite3_column_double(st, 12);
  r.decode_tok_s = sqlite3_column_double(st, 13);
  r.finish_reason = column_text(st, 14);
  r.error = column_text(st, 15);
  r.via = column_text(st, 16);
  r.auto_settings = column_text(st, 17);
  return r;
}

Result<Db> open_writer(const std::string& path, bool sync_full) {
  // A new log is at most owner-read-write, group-read (a narrower umask narrows it further), never
  // world-readable: rows name the peers' uids and pids and the models and options they used. SQLite
  // gives the -wal and -shm files the database's mode. An existing file keeps its admin's mode.
  if (const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640); fd >= 0) ::close(fd);
  auto db = open_connection(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!db) return db.error();
  auto v = user_version(db->get(), path);
  if (!v) return v.error();
  // Checked before WAL is switched on, so a newer file is left exactly as it was.
  SPECD_TRY(check_version(*v, path));
  SPECD_TRY(enable_wal(db->get(), path, sync_full));
  for (const auto& m : kMigrations) {
    if (*v >= m.to_version) continue;
    SPECD_TRY(apply(db->get(), m, path));
  }
  return db;
}

Result<Db> open_reader(const std::string& path) {
  auto db = open_connection(path, SQLITE_OPEN_READONLY);
  if (!db) return db.error();
  auto v = user_version(db->get(), path);
  if (!v) return v.error();
  return db;
}

}  // namespace specd::daemon::runlog
