// RunLog storage layer: owning SQLite handles, connection set-up and the ordered schema migrations.
#pragma once

#include "daemon/run_log.h"
#include "kernels/result.h"

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>

namespace specd::daemon::runlog {

struct DbClose {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Db = std::unique_ptr<sqlite3, DbClose>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

// The user_version the last migration leaves behind: what this build writes.
int32_t schema_version();

// Opens the write connection: creates the file if missing, checks it is a database whose
// user_version this build understands (SPECD_E_IO / SPECD_E_VERSION otherwise), switches it to WAL
// with synchronous=NORMAL (FULL when sync_full) and applies every pending migration, each in its
// own transaction.
Result<Db> open_writer(const std::string& path, bool sync_full = false);
// Opens a read-only connection to a database open_writer() has already prepared.
Result<Db> open_reader(const std::string& path);

// Runs SQL without results; errors become SPECD_E_IO naming what and the SQLite message.
Status exec(sqlite3* db, const char* sql, const char* what);
// persistent: the statement is kept for the connection's life (a hint to SQLite's allocator).
Result<Stmt> prepare(sqlite3* db, const std::string& sql, bool persistent = false);
// "<what>: <sqlite message>" as an SPECD_E_IO error.
Error sql_error(sqlite3* db, const char* what);

// The runs columns in RunRecord order; bind_record() and read_record() use the same order.
extern const char* const kRunColumns;
// Binds rec to parameters ?1..?18 of an INSERT listing kRunColumns. The strings are bound without
// copying, so rec must outlive the statement's next step.
void bind_record(sqlite3_stmt* st, const RunRecord& rec);
// Reads the current row of a SELECT of kRunColumns.
RunRecord read_record(sqlite3_stmt* st);

}  // namespace specd::daemon::runlog
