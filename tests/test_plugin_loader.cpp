// Tests of the decoder plugin loader: descriptor vetting, refusals and their log lines, permission
// checks, header self-containment, plugin exports, and a third-party plugin built from the installed SDK.
#include "daemon/decode_runtime.h"
#include "daemon/elf_exports.h"
#include "daemon/plugin_loader.h"
#include "tests/test_support.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

using namespace specd;
using namespace specd::test;
using specd::daemon::LoadedDecoder;
using specd::daemon::PluginRegistry;
using specd::daemon::unsafe_permissions;
namespace fs = std::filesystem;

namespace {

// "1.1": the version the host reports in its refusals.
std::string host_abi() { return std::to_string(SPECD_DECODER_ABI_MAJOR) + "." + std::to_string(SPECD_DECODER_ABI_MINOR); }

// Every module tests/plugins/meson.build builds, and the two of them the loader must accept.
const std::vector<std::string> kAllPlugins = {"c_plugin",  "misbehave", "bad_version", "no_entry",
                                              "null_slot", "dup_name",  "bad_name",    "short_desc",
                                              "declines",  "pointer_size"};

std::string built_plugin(const std::string& name) { return build_root() + "/tests/plugins/" + name + ".so"; }
std::string quoted(const std::string& s) { return "'" + s + "'"; }
int run(const std::string& cmd, std::string* out) { return run_command(cmd + " 2>&1", out); }
bool have(const std::string& tool) { return run_command("command -v " + tool + " >/dev/null 2>&1", nullptr) == 0; }

// Copies the named test plugins into a fresh directory (0700, ours) with mode 0755 each, so tests
// do not depend on the build tree's umask.
std::string stage(const std::vector<std::string>& names) {
  const std::string dir = temp_dir();
  for (const auto& n : names) {
    const std::string dst = dir + "/" + n + ".so";
    fs::copy_file(built_plugin(n), dst);
    fs::permissions(dst, fs::perms(0755));
  }
  return dir;
}

std::string load_error(PluginRegistry& reg, const std::string& path, int expect_code) {
  Status st = reg.load_file(path);
  REQUIRE_MESSAGE(!st.has_value(), path << " loaded but should have been refused");
  CHECK_MESSAGE(st.error().code == expect_code, st.error().message);
  return st.error().message;
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// Whether chown to a foreign uid/gid works here (it needs root or CAP_CHOWN).
bool can_chown(const std::string& path, uid_t uid, gid_t gid) { return ::chown(path.c_str(), uid, gid) == 0; }

}  // namespace

TEST_CASE("c_plugin loads and its descriptor is sane") {
  const std::string dir = stage({"c_plugin"});
  PluginRegistry reg;
  Status st = reg.load_file(dir + "/c_plugin.so");
  REQUIRE_MESSAGE(st.has_value(), st.error().message);

  const LoadedDecoder* d = reg.find("c_plugin");
  REQUIRE(d != nullptr);
  CHECK(d->name == "c_plugin");
  CHECK(d->path == dir + "/c_plugin.so");
  const specd_decoder* desc = d->desc;
  REQUIRE(desc != nullptr);
  CHECK(desc->struct_size >= offsetof(specd_decoder, end) + sizeof(desc->end));
  CHECK(desc->abi_major == SPECD_DECODER_ABI_MAJOR);
  CHECK(desc->abi_minor == 1);  // built as a 1.1 plugin (tests/plugins/c_plugin.c)
  CHECK(desc->pointer_size == sizeof(void*));
  CHECK(std::string(desc->name) == "c_plugin");
  CHECK(desc->version != nullptr);
  CHECK(desc->description != nullptr);
  // c_plugin fills every slot, the optional end included.
  CHECK((desc->create != nullptr));
  CHECK((desc->destroy != nullptr));
  CHECK((desc->begin != nullptr));
  CHECK((desc->plan != nullptr));
  CHECK((desc->accept != nullptr));
  CHECK((desc->end != nullptr));

  CHECK(reg.find("nope") == nullptr);
  const auto all = reg.list();
  REQUIRE(all.size() == 1);
  CHECK(all[0] == d);
}

TEST_CASE("load_dir loads the good plugins and logs one reason per refused one") {
  const std::string dir = stage(kAllPlugins);
  PluginRegistry reg;
  std::vector<std::string> log;
  CHECK(reg.load_dir(dir, &log) == 2);
  REQUIRE(reg.find("c_plugin") != nullptr);
  REQUIRE(reg.find("misbehave") != nullptr);
  CHECK(reg.find("c_plugin")->path == dir + "/c_plugin.so");  // dup_name sorts after c_plugin
  CHECK(reg.list().size() == 2);

  const std::string p = "refused " + dir + "/";
  const std::vector<std::string> expect = {
      p + "bad_name.so: bad decoder name 'Bad Name!' (want [a-z0-9_-]{1,64})",
      p + "bad_version.so: built for decoder ABI 99.0, host is " + host_abi(),
      p + "declines.so: specd_decoder_entry returned NULL (the plugin declined host ABI " + host_abi() + ")",
      p + "dup_name.so: duplicate decoder name 'c_plugin' (already loaded from " + dir + "/c_plugin.so)",
      p + "no_entry.so: no specd_decoder_entry symbol",
      p + "null_slot.so: required slot 'plan' is NULL",
      p + "pointer_size.so: built with 4-byte pointers, host has 8-byte pointers",
      p + "short_desc.so: descriptor struct_size 16 is smaller than the 1.0 descriptor (88)",
  };
  REQUIRE_MESSAGE(log.size() == expect.size(), [&] {
    std::string all;
    for (auto& l : log) all += l + "\n";
    return all;
  }());
  // Files are visited in name order, so the log is in that order too; no_entry's line goes on
  // with dlerror's text.
  for (size_t i = 0; i < expect.size(); ++i) CHECK_MESSAGE(log[i].rfind(expect[i], 0) == 0, log[i]);
}

TEST_CASE("load_file reports each refusal with its documented code") {
  const std::string dir = stage(kAllPlugins);
  PluginRegistry reg;
  REQUIRE(reg.load_file(dir + "/c_plugin.so").has_value());
  CHECK(contains(load_error(reg, dir + "/bad_version.so", SPECD_E_VERSION), "built for decoder ABI 99.0, host is " + host_abi()));
  load_error(reg, dir + "/pointer_size.so", SPECD_E_VERSION);
  {  // refused from its symbol table alone: its constructor never runs in the daemon
    const std::string mark = temp_dir() + "/constructor-ran";
    setenv("SPECD_TEST_CTOR_MARK", mark.c_str(), 1);
    CHECK(contains(load_error(reg, dir + "/no_entry.so", SPECD_E_PLUGIN), "not loaded"));
    unsetenv("SPECD_TEST_CTOR_MARK");
    CHECK_FALSE(fs::exists(mark));
  }
  load_error(reg, dir + "/null_slot.so", SPECD_E_PLUGIN);
  load_error(reg, dir + "/dup_name.so", SPECD_E_PLUGIN);
  load_error(reg, dir + "/bad_name.so", SPECD_E_PLUGIN);
  load_error(reg, dir + "/short_desc.so", SPECD_E_PLUGIN);
  load_error(reg, dir + "/declines.so", SPECD_E_PLUGIN);
  // The same file twice is a duplicate name, and the first copy stays usable.
  CHECK(contains(load_error(reg, dir + "/c_plugin.so", SPECD_E_PLUGIN), "duplicate decoder name 'c_plugin'"));
  load_error(reg, dir + "/missing.so", SPECD_E_IO);
  CHECK(reg.list().size() == 1);
  CHECK((reg.find("c_plugin")->desc->plan != nullptr));
}

TEST_CASE("group- or world-writable plugin files are refused") {
  for (const unsigned mode : {0666u, 0646u, 0602u}) {
    CAPTURE(mode);
    const std::string dir = stage({"c_plugin"});
    const std::string so = dir + "/c_plugin.so";
    fs::permissions(so, fs::perms(mode));
    PluginRegistry reg;
    const std::string msg = load_error(reg, so, SPECD_E_INVALID_ARG);
    CHECK(contains(msg, so));
    CHECK(contains(msg, "S_IWOTH"));
    std::vector<std::string> log;
    CHECK(reg.load_dir(dir, &log) == 0);
    REQUIRE(log.size() == 1);
    CHECK(log[0] == "refused " + so + ": " + msg);
  }
}

TEST_CASE("a group-writable file is fine for our group or root's, refused for another") {
  const std::string dir = stage({"c_plugin"});
  const std::string so = dir + "/c_plugin.so";
  fs::permissions(so, fs::perms(0664));
  CHECK(unsafe_permissions(so) == "");
  {
    PluginRegistry reg;
    CHECK(reg.load_file(so).has_value());
  }
  if (!can_chown(so, ::geteuid(), 12345)) {
    MESSAGE("skipped: cannot chown to a foreign group here (not root)");
    return;
  }
  fs::permissions(so, fs::perms(0664));  // chown may clear mode bits
  PluginRegistry reg;
  const std::string msg = load_error(reg, so, SPECD_E_INVALID_ARG);
  CHECK(contains(msg, so));
  CHECK(contains(msg, "S_IWGRP"));
  CHECK(contains(msg, "group 12345"));
}

TEST_CASE("a plugin file owned by another user is refused") {
  const std::string dir = stage({"c_plugin"});
  const std::string so = dir + "/c_plugin.so";
  if (!can_chown(so, 12345, ::getegid())) {
    MESSAGE("skipped: cannot chown to a foreign user here (not root)");
    return;
  }
  PluginRegistry reg;
  const std::string msg = load_error(reg, so, SPECD_E_INVALID_ARG);
  CHECK(contains(msg, so + " is owned by uid 12345"));
}

TEST_CASE("a world-writable or foreign-owned plugin directory is refused") {
  const std::string dir = stage({"c_plugin", "misbehave"});
  fs::permissions(dir, fs::perms(0777));
  PluginRegistry reg;
  const std::string msg = load_error(reg, dir + "/c_plugin.so", SPECD_E_INVALID_ARG);
  CHECK(msg.rfind(dir + " is writable by others (S_IWOTH, mode 0777)", 0) == 0);
  std::vector<std::string> log;
  CHECK(reg.load_dir(dir, &log) == 0);
  CHECK(log.size() == 2);

  fs::permissions(dir, fs::perms(0755));
  if (!can_chown(dir, 12345, ::getegid())) {
    MESSAGE("skipped: cannot chown a directory to a foreign user here (not root)");
    return;
  }
  CHECK(contains(load_error(reg, dir + "/c_plugin.so", SPECD_E_INVALID_ARG), dir + " is owned by uid 12345"));
}

TEST_CASE("a symlink in a safe directory to a plugin in an unsafe one is refused") {
  const std::string unsafe = stage({"c_plugin"});
  fs::permissions(unsafe, fs::perms(0777));
  const std::string safe = temp_dir();
  fs::create_symlink(unsafe + "/c_plugin.so", safe + "/c_plugin.so");
  PluginRegistry reg;
  CHECK(contains(load_error(reg, safe + "/c_plugin.so", SPECD_E_INVALID_ARG), unsafe + " is writable by others"));
  // And the other way round: a safe target named from a world-writable directory.
  fs::permissions(unsafe, fs::perms(0755));
  fs::permissions(safe, fs::perms(0777));
  CHECK(contains(load_error(reg, safe + "/c_plugin.so", SPECD_E_INVALID_ARG), safe + " is writable by others"));
}

TEST_CASE("unsafe_permissions names the bit and the path") {
  const std::string dir = temp_dir();
  CHECK(unsafe_permissions(dir) == "");
  const std::string f = dir + "/x";
  write_file(f, {1, 2, 3});
  fs::permissions(f, fs::perms(0644));
  CHECK(unsafe_permissions(f) == "");
  fs::permissions(f, fs::perms(0642));
  CHECK(unsafe_permissions(f) == f + " is writable by others (S_IWOTH, mode 0642)");
  CHECK(unsafe_permissions(dir + "/absent").rfind("cannot stat " + dir + "/absent", 0) == 0);
}

TEST_CASE("load_dir ignores files that are not *.so") {
  const std::string dir = stage({"c_plugin"});
  write_file(dir + "/README.txt", {'h', 'i'});
  fs::copy_file(built_plugin("misbehave"), dir + "/misbehave.so.1");
  fs::copy_file(built_plugin("dup_name"), dir + "/dup_name.so.bak");
  fs::create_directory(dir + "/sub.so");
  PluginRegistry reg;
  std::vector<std::string> log;
  CHECK(reg.load_dir(dir, &log) == 1);
  CHECK(log.empty());
  CHECK(reg.find("misbehave") == nullptr);

  std::vector<std::string> log2;
  PluginRegistry reg2;
  CHECK(reg2.load_dir(dir + "/absent", &log2) == 0);
  REQUIRE(log2.size() == 1);
  CHECK(log2[0].rfind("refused " + dir + "/absent: cannot list the directory", 0) == 0);
}

TEST_CASE("the ABI headers compile alone as C11 and as C++20") {
  if (!have("cc") || !have("c++")) {
    MESSAGE("skipped: cc or c++ not found");
    return;
  }
  const std::string dir = temp_dir();
  const std::string inc = quoted(source_root() + "/abi");
  for (const std::string header : {"specd/decoder.h", "specd/error.h"}) {
    CAPTURE(header);
    const std::string src = dir + "/only.c";
    const std::string text = "#include <" + header + ">\n";
    write_file(src, std::vector<uint8_t>(text.begin(), text.end()));
    std::string out;
    CHECK_MESSAGE(run("cc -std=c11 -pedantic-errors -Wall -Wextra -Wstrict-prototypes -Werror -fsyntax-only -I" +
                          inc + " " + quoted(src),
                      &out) == 0,
                  out);
    out.clear();
    CHECK_MESSAGE(run("c++ -std=c++20 -x c++ -pedantic-errors -Wall -Wextra -Werror -fsyntax-only -I" + inc + " " +
                          quoted(src),
                      &out) == 0,
                  out);
  }
}

namespace {
// The names of the symbols a shared object defines in its dynamic table, one a line, sorted.
std::string dynamic_exports(const std::string& so) {
  std::string out;
  const int rc = run_command("nm -D --defined-only " + quoted(so) + " | awk '{print $3}' | sort", &out);
  REQUIRE_MESSAGE(rc == 0, so);
  return out;
}
}  // namespace

TEST_CASE("each test plugin exports specd_decoder_entry and nothing else") {
  if (!have("nm")) {
    MESSAGE("skipped: nm not found");
    return;
  }
  for (const auto& name : kAllPlugins) {
    CAPTURE(name);
    const std::string exports = dynamic_exports(built_plugin(name));
    if (name == "no_entry")
      CHECK(exports == "specd_decoder_entri\n");
    else
      CHECK(exports == "specd_decoder_entry\n");
  }
}

namespace {
// Installs the project's devel files (headers, .pc) into a fresh destdir; returns the directory
// holding specd-decoder.pc, or "" when it is not there.
std::string install_sdk(const std::string& destdir) {
  std::string out;
  const int rc = run("meson install -C " + quoted(build_root()) + " --no-rebuild --tags devel --destdir " +
                         quoted(destdir),
                     &out);
  REQUIRE_MESSAGE(rc == 0, out);
  for (const auto& e : fs::recursive_directory_iterator(destdir))
    if (e.path().filename() == "specd-decoder.pc") return e.path().parent_path().string();
  return "";
}
}  // namespace

TEST_CASE("a third-party plugin builds outside the tree against the installed SDK, loads and runs") {
  if (!have("meson") || !have("pkg-config") || !have("make") || !have("cc")) {
    MESSAGE("skipped: meson, pkg-config, make or cc not found");
    return;
  }
  const std::string tmp = temp_dir();
  const std::string destdir = tmp + "/root";
  const std::string pcdir = install_sdk(destdir);
  REQUIRE_MESSAGE(!pcdir.empty(), "no specd-decoder.pc under " << destdir);
  // Only our .pc is visible, and its paths are rewritten into the destdir.
  const std::string env = "PKG_CONFIG_LIBDIR=" + quoted(pcdir) + " PKG_CONFIG_PATH= PKG_CONFIG_SYSROOT_DIR=" +
                          quoted(destdir) + " ";
  std::string out;
  REQUIRE_MESSAGE(run(env + "pkg-config --cflags specd-decoder", &out) == 0, out);
  CHECK_MESSAGE(contains(out, "-I" + destdir + "/"), out);
  out.clear();
  REQUIRE(run(env + "pkg-config --modversion specd-decoder", &out) == 0);
  CHECK(out == std::to_string(SPECD_DECODER_ABI_MAJOR) + "." + std::to_string(SPECD_DECODER_ABI_MINOR) + "\n");

  const std::string plugins = tmp + "/plugins";
  out.clear();
  REQUIRE_MESSAGE(run(env + "make -C " + quoted(source_root() + "/examples/c_decoder") + " OUT=" + quoted(plugins),
                      &out) == 0,
                  out);
  const std::string so = plugins + "/greedy_decoder.so";
  fs::permissions(plugins, fs::perms(0755));
  PluginRegistry reg;
  Status st = reg.load_file(so);
  REQUIRE_MESSAGE(st.has_value(), st.error().message);
  const LoadedDecoder* d = reg.find("example-greedy");
  REQUIRE(d != nullptr);
  CHECK((d->desc->end == nullptr));  // optional, and the example leaves it out
  if (have("nm")) CHECK(dynamic_exports(so) == "specd_decoder_entry\n");

  // And it decodes: greedy from BOS through the runtime gives the verified stories260K ids.
  auto model = specd::engine::Model::load(model_path("stories260K.gguf"));
  REQUIRE(model.has_value());
  specd::kernels::ThreadPool pool(2);
  specd::daemon::DecodeRuntime rt(**model, reg, pool);
  specd::daemon::DecodeRequest req;
  req.prompt = {1};
  req.max_tokens = 40;
  req.decoder = "example-greedy";
  auto res = rt.run(req);
  REQUIRE_MESSAGE(res.has_value(), (res ? "" : res.error().message));
  CHECK(res->tokens == std::vector<int32_t>(golden_ids().begin(), golden_ids().begin() + 40));
}

TEST_CASE("elf_exports_symbol reads a library's dynamic symbols without loading it, and names bad files") {
  const std::string dir = stage({"c_plugin", "no_entry"});
  auto yes = specd::daemon::elf_exports_symbol(dir + "/c_plugin.so", "specd_decoder_entry");
  REQUIRE(yes.has_value());
  CHECK(yes.value());
  auto no = specd::daemon::elf_exports_symbol(dir + "/no_entry.so", "specd_decoder_entry");
  REQUIRE(no.has_value());
  CHECK_FALSE(no.value());
  // An undefined reference is not an export: every plugin imports nothing, but libc's own do.
  auto undefined = specd::daemon::elf_exports_symbol(dir + "/c_plugin.so", "memcpy");
  REQUIRE(undefined.has_value());
  CHECK_FALSE(undefined.value());

  auto expect = [&](const std::string& path, int code, const std::string& phrase) {
    auto r = specd::daemon::elf_exports_symbol(path, "specd_decoder_entry");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == code);
    CHECK_MESSAGE(contains(r.error().message, phrase), r.error().message);
  };
  expect(dir + "/absent.so", SPECD_E_IO, "cannot open");
  write_file(dir + "/text.so", {'h', 'e', 'l', 'l', 'o'});
  expect(dir + "/text.so", SPECD_E_PLUGIN, "not an ELF file");
  // The first 64 bytes of a real plugin: a valid header whose sections lie past the end.
  std::vector<uint8_t> head = read_file(dir + "/c_plugin.so");
  head.resize(64);
  write_file(dir + "/cut.so", head);
  auto cut = specd::daemon::elf_exports_symbol(dir + "/cut.so", "specd_decoder_entry");
  CHECK((!cut.has_value() ? cut.error().code == SPECD_E_PLUGIN : !cut.value()));
  // An executable (a PIE is ET_DYN too) exports no entry point either way.
  auto exe = specd::daemon::elf_exports_symbol("/bin/true", "specd_decoder_entry");
  CHECK((exe.has_value() ? !exe.value() : exe.error().code == SPECD_E_PLUGIN));
}
