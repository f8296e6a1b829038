// The jinja2 reference renderer, run as a subprocess over a jobs file (see chat_oracle.h).
#include "tests/chat_oracle.h"

#include <ctime>
#include <fstream>
#include <stdexcept>

#include "tests/test_support.h"

namespace specd::test {

void oracle_now(struct ::tm* out) {
  *out = {};
  out->tm_year = 2024 - 1900;
  out->tm_mon = 6;
  out->tm_mday = 26;
  out->tm_hour = 10;
  out->tm_min = 30;
  out->tm_wday = 5;    // a Friday
  out->tm_yday = 207;  // 0-based day of 2024
}

std::vector<OracleResult> run_oracle(const std::vector<OracleJob>& jobs) {
  nlohmann::json spec = {{"now", {2024, 7, 26, 10, 30, 0}}, {"jobs", nlohmann::json::array()}};
  for (const OracleJob& j : jobs) spec["jobs"].push_back({{"template", j.template_path}, {"context", j.context}});
  const std::string path = temp_dir() + "/oracle_jobs.json";
  std::ofstream(path, std::ios::binary) << spec.dump();
  const std::string script = source_root() + "/tests/reference/render_chat_template.py";
  std::string out;
  const int rc = run_command("python3 '" + script + "' '" + path + "'", &out);
  if (rc != 0) throw std::runtime_error("the jinja2 reference renderer failed (python3-jinja2 installed?): exit " + std::to_string(rc));
  const nlohmann::json got = nlohmann::json::parse(out);
  std::vector<OracleResult> results;
  for (const auto& r : got) {
    OracleResult o;
    o.ok = r.at("ok").get<bool>();
    o.text = o.ok ? r.at("text").get<std::string>() : r.at("error").get<std::string>();
    results.push_back(std::move(o));
  }
  if (results.size() != jobs.size()) throw std::runtime_error("the jinja2 reference renderer returned too few results");
  return results;
}

}  // namespace specd::test
