// What the run log keeps of a request (README "The run log": no prompt, no output): a real daemon
// serves prompts carrying a marker, and neither the marker, the prompt ids nor the generated text
// reach any byte of the database, its WAL or shared-memory file.
#include "tests/daemon_harness.h"

#include <csignal>
#include <filesystem>
#include <string>

using namespace specd;
using namespace specd::test;

namespace {

std::string all_bytes_of(const std::string& db) {
  std::string all;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    const std::string p = db + suffix;
    if (!std::filesystem::exists(p)) continue;
    const auto b = read_file(p);
    all.append(b.begin(), b.end());
  }
  return all;
}

// The ids as the bytes SQLite would hold if it stored them as a little-endian int32 blob.
std::string as_blob(const std::vector<int32_t>& ids) {
  return std::string(reinterpret_cast<const char*>(ids.data()), ids.size() * sizeof(int32_t));
}

}  // namespace

TEST_CASE("serve: the run log holds no prompt and no output, in the database, its WAL or its shm") {
  DaemonProcess d;
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  RawClient c(d.socket());  // says Hello

  const std::string marker = "Zanzibarquokka";
  GenParams p;
  p.prompt_text = "Once upon a time " + marker + " met a dog";
  p.max_tokens = 48;
  REQUIRE(c.send(generate_frame(1, p)));
  const GenOutcome text_run = collect(c, 1);
  REQUIRE_MESSAGE(text_run.finished, text_run.error_message);
  REQUIRE(text_run.text.size() >= 40);

  GenParams q;
  q.prompt_ids = {1, 403, 407, 411, 299, 300, 301, 302};
  q.max_tokens = 16;
  q.decoder = "ngram";
  REQUIRE(c.send(generate_frame(2, q)));
  const GenOutcome id_run = collect(c, 2);
  REQUIRE_MESSAGE(id_run.finished, id_run.error_message);
  c.close();

  d.signal(SIGTERM);
  REQUIRE_MESSAGE(d.wait_exit() == 0, d.log());
  const std::string bytes = all_bytes_of(d.db());
  REQUIRE(bytes.size() > 0);
  // The check can fail: what the log does hold is found in the same bytes.
  CHECK(bytes.find("ngram") != std::string::npos);
  CHECK(bytes.find("stories") != std::string::npos);
  CHECK(bytes.find(marker) == std::string::npos);
  CHECK(bytes.find("met a dog") == std::string::npos);
  CHECK(bytes.find(text_run.text.substr(0, 24)) == std::string::npos);
  CHECK(bytes.find(text_run.text.substr(text_run.text.size() - 24)) == std::string::npos);
  CHECK(bytes.find(as_blob(q.prompt_ids)) == std::string::npos);
  CHECK(bytes.find(as_blob(id_run.ids)) == std::string::npos);
  CHECK(bytes.find(as_blob(text_run.ids)) == std::string::npos);
}
