// Decoders describe their options (ABI 1.2's table in the descriptor): each built-in plugin's table
// names exactly the keys its create() reads, with the defaults and ranges written in the code; the
// runtime accepts every described option at its default; a 1.1 plugin is listed as "options not
// described"; `specd decoders` prints it all.
#include "clients/decoder_text.h"
#include "daemon/decoder_catalog.h"
#include "tests/daemon_harness.h"
#include "tests/runtime_fixture.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

using namespace specd;
using namespace specd::test;

namespace {

struct CodeOption {
  std::string def, lo, hi;  // as written in the call
};

// Every option read in plugins/NAME/*.c: api->opt_int(h, "k", 8, 1, 64, ...), read_int(api, h, "W", ...),
// read_opt(api, h, ...) and opt_string(h, "accept", "exact", ...). Helpers that pass a variable key
// are not matched, which is what we want: their callers are.
std::map<std::string, CodeOption> options_in_code(const std::string& name) {
  std::map<std::string, CodeOption> out;
  const std::regex call(R"re((?:opt_(?:int|float|string)\(h|read_(?:int|opt)\(api, h), "(\w+)", ([^,;\n]+)(?:, ([^,;\n]+), ([^,);\n]+))?)re");
  for (const auto& f : std::filesystem::directory_iterator(source_root() + "/plugins/" + name)) {
    if (f.path().extension() != ".c") continue;
    std::ifstream in(f.path());
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    for (std::sregex_iterator it(text.begin(), text.end(), call), end; it != end; ++it)
      out[(*it)[1]] = {(*it)[2], (*it)[3], (*it)[4]};
  }
  return out;
}

bool is_number(const std::string& s) {
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return !s.empty() && end && *end == '\0';
}

nlohmann::json entry_of(const std::string& name) {
  daemon::PluginRegistry reg;
  auto st = reg.load_file(plugin_path(name));
  REQUIRE_MESSAGE(st.has_value(), (st ? "" : st.error().message));
  return daemon::decoder_json(*reg.find(name));
}

// {"key": "default", ...} for every described option whose default is a value, not a phrase.
std::string defaults_json(const nlohmann::json& e) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& o : e["options"]) {
    const std::string def = o["default"];
    if (def.find(' ') == std::string::npos) j[o["key"].get<std::string>()] = def;
  }
  return j.dump();
}

}  // namespace

TEST_CASE("decoder options: each built-in decoder describes exactly the options its create() reads") {
  const std::map<std::string, bool> lossless = {
      {"ar", true}, {"ngram", true}, {"redrafter", true}, {"tidar", true}, {"lopa", false}};
  for (const auto& [name, want_lossless] : lossless) {
    CAPTURE(name);
    const nlohmann::json e = entry_of(name);
    REQUIRE(e["described"] == true);
    CHECK(e["lossless"] == want_lossless);
    const auto code = options_in_code(name);
    std::set<std::string> described, read(std::views::keys(code).begin(), std::views::keys(code).end());
    for (const auto& j : e["options"]) {
      const struct {
        std::string key, type, def, range, meaning;
      } o{j["key"], j["type"], j["default"], j["range"], j["meaning"]};
      CAPTURE(o.key);
      described.insert(o.key);
      CHECK_FALSE(o.meaning.empty());
      const auto it = code.find(o.key);
      if (it == code.end()) continue;
      const CodeOption& c = it->second;
      // Literal defaults and bounds in the code must be what the table says.
      if (is_number(c.def)) CHECK(std::stod(o.def) == std::stod(c.def));
      if (o.type == "string" && c.def.size() > 2 && c.def.front() == '"') CHECK(c.def.substr(1, c.def.size() - 2) == o.def);
      if (is_number(c.lo) && is_number(c.hi)) {
        std::string range = "[";
        range += std::to_string(std::stoll(c.lo));
        range += ", ";
        range += std::to_string(std::stoll(c.hi));
        CHECK(o.range == range + "]");
      }
    }
    CHECK(described == read);
  }
  // Only lossless decoders are said to need nothing beyond the model, and those that need files say how to make them.
  CHECK(entry_of("ar")["needs"] == "");
  for (const char* name : {"redrafter", "tidar", "lopa"})
    CHECK(entry_of(name)["needs"].get<std::string>().find("scripts/train.sh") != std::string::npos);
}

TEST_CASE("decoder options: the runtime accepts every described option at its default") {
  struct Case {
    const char* decoder;
    const char* model;    // "" stories260K
    const char* drafter;  // a side file the decoder needs, "" none
  };
  for (const Case& c : {Case{"ar", "", ""}, Case{"ngram", "", ""}, Case{"redrafter", "", "stories260K-redrafter.gguf"},
                        Case{"tidar", "stories260K-tidar.gguf", ""}, Case{"lopa", "stories260K-d2f.gguf", ""}}) {
    CAPTURE(c.decoder);
    // The trained files are found as their own suites find them; those suites fail when they are missing.
    const std::string model = *c.model ? trained_model(c.model) : "", drafter = *c.drafter ? trained_model(c.drafter) : "";
    if ((*c.model && model.empty()) || (*c.drafter && drafter.empty())) {
      MESSAGE("skipped " << c.decoder << ": no trained " << (*c.model ? c.model : c.drafter));
      continue;
    }
    std::unique_ptr<engine::Model> own;
    if (!model.empty()) {
      auto m = engine::Model::load(model);
      REQUIRE_MESSAGE(m.has_value(), (m ? "" : m.error().message));
      own = std::move(m.value());
    }
    RuntimeFixture f(own ? *own : stories_model(), {}, {c.decoder});
    nlohmann::json given = nlohmann::json::parse(defaults_json(entry_of(c.decoder)));
    if (!drafter.empty()) given["drafter"] = drafter;  // its default is a search, not a value
    const std::string opts = given.dump();
    CAPTURE(opts);
    auto r = f.rt.run(request({1}, 4, c.decoder, opts));
    CHECK_MESSAGE(r.has_value(), (r ? "" : r.error().message));
  }
}

TEST_CASE("decoder options: a 1.1 descriptor is listed as not described; entries are read with the plugin's stride") {
  specd_decoder d{};
  d.struct_size = static_cast<uint32_t>(offsetof(specd_decoder, options));  // as a 1.1 plugin compiled it
  d.version = "0.1";
  d.description = "old";
  daemon::LoadedDecoder old{"old", "/x/old.so", &d};
  nlohmann::json e = daemon::decoder_json(old);
  CHECK(e["described"] == false);
  CHECK(decoder_text(e).find("options not described") != std::string::npos);
  // The plain-C test plugin is built as a 1.1 plugin: it loads, runs and is listed the same way.
  const nlohmann::json c = entry_of("c_plugin");
  CHECK(c["described"] == false);
  CHECK_FALSE(c.contains("options"));
  RuntimeFixture f({}, {"c_plugin"});
  CHECK(f.run(request({1}, 4, "c_plugin")).tokens.size() == 4);

  // A later plugin's entries may be longer: the host steps by their struct_size.
  struct Longer {
    specd_option_desc o;
    int extra;
  };
  Longer two[2] = {};
  for (Longer& l : two) l.o.struct_size = sizeof(Longer);
  two[0].o = {sizeof(Longer), SPECD_OPTION_INT, "a", "1", "[0, 2]", "first"};
  two[1].o = {sizeof(Longer), SPECD_OPTION_STRING, "b", "x", nullptr, "second"};
  specd_decoder n{};
  n.struct_size = sizeof n;
  n.options = &two[0].o;
  n.n_options = 2;
  n.flags = SPECD_DECODER_LOSSLESS;
  e = daemon::decoder_json(daemon::LoadedDecoder{"new", "/x/new.so", &n});
  REQUIRE(e["options"].size() == 2);
  CHECK(e["options"][1]["key"] == "b");
  CHECK(e["options"][1]["type"] == "string");
  CHECK(e["lossless"] == true);
  const std::string text = decoder_text(e);
  CHECK(text.find("a (int, [0, 2], default 1)") != std::string::npos);
  CHECK(text.find("b (string, default x)") != std::string::npos);
  // An entry smaller than 1.2's cannot be read: not described rather than misread.
  two[0].o.struct_size = 8;
  CHECK(daemon::decoder_json(daemon::LoadedDecoder{"bad", "/x/bad.so", &n})["described"] == false);
  // Described with no options at all (the example plugin): "no options".
  n.options = nullptr;
  n.n_options = 0;
  CHECK(decoder_text(daemon::decoder_json(daemon::LoadedDecoder{"none", "/x/none.so", &n})).find("no options") !=
        std::string::npos);
}

TEST_CASE("specd decoders lists every decoder with its options; --json has the same") {
  std::string out;
  REQUIRE(run_command(build_root() + "/daemon/specd decoders", &out) == 0);
  for (const char* want : {"ar 1.0.0  lossless", "lopa 1.1.0  lossy", "prefill_chunk (int, [1, 4096], default 256)",
                           "needs: a drafter trained for the model", "tau_conf (float, [0, 2], default 0.9)"})
    CHECK_MESSAGE(out.find(want) != std::string::npos, want);
  out.clear();
  REQUIRE(run_command(build_root() + "/daemon/specd decoders --json", &out) == 0);
  const auto j = nlohmann::json::parse(out);
  std::set<std::string> names;
  for (const auto& d : j) names.insert(d["name"].get<std::string>());
  CHECK(names == std::set<std::string>{"ar", "lopa", "ngram", "redrafter", "tidar"});
  // --plugin-dir adds: the test plugins' 1.1 c_plugin beside the built-in ar, in generate too.
  out.clear();
  REQUIRE(run_command(build_root() + "/daemon/specd decoders --plugin-dir " + build_root() + "/tests/plugins 2>/dev/null", &out) == 0);
  CHECK(out.find("c_plugin 1.0  lossless or lossy: not described") != std::string::npos);
  CHECK(out.find("ar 1.0.0  lossless") != std::string::npos);
  out.clear();
  CHECK(run_command(build_root() + "/daemon/specd generate --model " + model_path("stories260K.gguf") +
                        " --prompt-ids 1 --max-tokens 3 --decoder ar --plugin-dir " + build_root() + "/tests/plugins 2>/dev/null",
                    &out) == 0);
  // The built-in directory named again, by another spelling, is searched once: no refusals.
  const std::string again = std::filesystem::relative(build_root() + "/plugins").string();
  REQUIRE(run_command(build_root() + "/daemon/specd decoders --plugin-dir " + again + " --plugin-dir " + build_root() + "/./plugins 2>&1",
                      &out) == 0);
  CHECK_MESSAGE(out.find("refused") == std::string::npos, out);
  CHECK(out.find("ar 1.0.0  lossless") != std::string::npos);
  CHECK(run_command(build_root() + "/daemon/specd decoders --bogus 2>/dev/null", &out) == 2);
  CHECK(run_command("SPECD_PLUGIN_DIR=/nonexistent " + build_root() + "/daemon/specd decoders 2>/dev/null", &out) == 1);
}

TEST_CASE("specctl decoders shows what the daemon's decoders describe; --json the same objects") {
  DaemonProcess d;
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  const std::string specctl = "SPECD_SOCKET='" + d.socket() + "' " + build_root() + "/clients/specctl";
  std::string out;
  REQUIRE(run_command(specctl + " decoders", &out) == 0);
  for (const char* want : {"lopa 1.1.0  lossy", "ngram_max (int, [1, 8], default 3)", "options (--decoder-opt KEY=VALUE):"})
    CHECK_MESSAGE(out.find(want) != std::string::npos, want);
  out.clear();
  REQUIRE(run_command(specctl + " --json decoders", &out) == 0);
  const auto j = nlohmann::json::parse(out);
  bool saw_ar = false;
  for (const auto& dec : j) {
    if (dec["name"] != "ar") continue;
    saw_ar = true;
    CHECK(dec["lossless"] == true);
    CHECK(dec["options"][0]["key"] == "prefill_chunk");
  }
  CHECK(saw_ar);
}

TEST_CASE("redrafter without a drafter names every place it looked and how to make one") {
  namespace fs = std::filesystem;
  const std::string dir = temp_dir(), cache = temp_dir();
  fs::copy_file(model_path("stories260K.gguf"), dir + "/lonely.gguf");
  ::setenv("SPECD_CACHE", cache.c_str(), 1);
  auto m = engine::Model::load(dir + "/lonely.gguf");
  REQUIRE(m.has_value());
  RuntimeFixture f(*m.value(), {}, {"redrafter"});
  auto r = f.rt.submit(request({1}, 4, "redrafter"), {});
  ::unsetenv("SPECD_CACHE");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == SPECD_E_IO);
  CHECK_MESSAGE(r.error().message.find(dir + "/lonely-redrafter.gguf or " + cache + "/models/lonely-redrafter.gguf") !=
                    std::string::npos, r.error().message);
  CHECK_MESSAGE(r.error().message.find("scripts/train.sh redrafter") != std::string::npos, r.error().message);
}
