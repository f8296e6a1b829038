// Renders chat templates with Python's jinja2 as Hugging Face configures it
// (tests/reference/render_chat_template.py), for tests that compare specd's renderer with it.
#pragma once

#include <ctime>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace specd::test {

struct OracleJob {
  std::string template_path;
  nlohmann::json context;
};
struct OracleResult {
  bool ok = false;
  std::string text;  // the rendering, or jinja2's error
};

// Runs the reference script once over all jobs (strftime_now answers 2024-07-26 10:30:00, the time
// oracle_now() gives). Throws std::runtime_error when python3 or jinja2 cannot run it.
std::vector<OracleResult> run_oracle(const std::vector<OracleJob>& jobs);
// The fixed time the oracle uses, as the std::tm ChatTemplate::render takes.
void oracle_now(struct ::tm* out);

}  // namespace specd::test
