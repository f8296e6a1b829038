// Config: the TOML file's sections and the `specd serve` flags, validated with file:line messages.
#include "daemon/config.h"

#include "daemon/http_address.h"
#include "kernels/device.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cstdarg>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

namespace specd::daemon {
namespace {

// One section's reader: every value goes through a typed getter that names the file, the line
// and the dotted key, so a person can fix the file from the message alone.
class Section {
 public:
  Section(const std::string& file, std::string name) : file_(file), name_(std::move(name)) {}

  Error error_at(const toml::source_region& src, const char* fmt, ...) const __attribute__((format(printf, 3, 4))) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return make_error(SPECD_E_INVALID_ARG, "%s:%u: %s", file_.c_str(), static_cast<unsigned>(src.begin.line), msg);
  }
  std::string dotted(const toml::key& k) const { return name_.empty() ? std::string(k.str()) : name_ + "." + std::string(k.str()); }

  Result<int64_t> integer(const toml::key& k, const toml::node& v, int64_t lo, int64_t hi) const {
    const auto* i = v.as_integer();
    if (!i || i->get() < lo || i->get() > hi)
      return error_at(v.source(), "'%s' must be an integer in [%lld, %lld]", dotted(k).c_str(),
                      static_cast<long long>(lo), static_cast<long long>(hi));
    return i->get();
  }
  Result<double> number(const toml::key& k, const toml::node& v, double lo, double hi) const {
    double d = 0;
    if (const auto* f = v.as_floating_point()) d = f->get();
    else if (const auto* i = v.as_integer()) d = static_cast<double>(i->get());
    else return error_at(v.source(), "'%s' must be a number in [%g, %g]", dotted(k).c_str(), lo, hi);
    if (!(d >= lo && d <= hi)) return error_at(v.source(), "'%s' must be a number in [%g, %g]", dotted(k).c_str(), lo, hi);
    return d;
  }
  Result<std::string> string(const toml::key& k, const toml::node& v) const {
    const auto* s = v.as_string();
    if (!s || s->get().empty()) return error_at(v.source(), "'%s' must be a non-empty string", dotted(k).c_str());
    return s->get();
  }
  Result<std::vector<std::string>> strings(const toml::key& k, const toml::node& v) const {
    const auto* a = v.as_array();
    if (!a) return error_at(v.source(), "'%s' must be an array of strings", dotted(k).c_str());
    std::vector<std::string> out;
    for (const auto& e : *a) {
      const auto* s = e.as_string();
      if (!s || s->get().empty()) return error_at(e.source(), "'%s' must hold non-empty strings", dotted(k).c_str());
      out.push_back(s->get());
    }
    return out;
  }
  Result<std::vector<uint32_t>> ids(const toml::key& k, const toml::node& v) const {
    const auto* a = v.as_array();
    if (!a) return error_at(v.source(), "'%s' must be an array of ids", dotted(k).c_str());
    std::vector<uint32_t> out;
    for (const auto& e : *a) {
      const auto* i = e.as_integer();
      if (!i || i->get() < 0 || i->get() >= std::numeric_limits<uint32_t>::max())
        return error_at(e.source(), "'%s' must hold ids in [0, 4294967294]", dotted(k).c_str());
      out.push_back(static_cast<uint32_t>(i->get()));
    }
    return out;
  }
  const std::string& file() const { return file_; }
  Error unknown(const toml::key& k) const { return error_at(k.source(), "unknown key '%s'", dotted(k).c_str()); }

 private:
  const std::string& file_;
  std::string name_;
};

// socket_mode is "0660" (a string, since TOML has no leading-zero integers) or 0o660 / 432.
Result<uint32_t> socket_mode(const Section& s, const toml::key& k, const toml::node& v) {
  int64_t mode = -1;
  if (const auto* i = v.as_integer()) {
    mode = i->get();
  } else if (const auto* str = v.as_string()) {
    const std::string& t = str->get();
    char* end = nullptr;
    const long m = std::strtol(t.c_str(), &end, 8);
    if (!t.empty() && end && *end == '\0') mode = m;
  }
  if (mode < 0 || mode > 0777) return s.error_at(v.source(), "'%s' must be an octal mode such as \"0660\"", s.dotted(k).c_str());
  return static_cast<uint32_t>(mode);
}

template <class T, class U>
Status assign(T& field, Result<U> r) {
  if (!r) return r.error();
  field = static_cast<T>(r.value());
  return {};
}

// A device name kernels::parse_device accepts, else the error at the value's line.
Status device_ok(const Section& s, const toml::node& v, const std::string& text) {
  auto d = kernels::parse_device(text);
  if (!d) return s.error_at(v.source(), "%s", d.error().message.c_str());
  return {};
}

Status read_daemon(const Section& s, const toml::key& k, const toml::node& v, Config& c) {
  const std::string_view n = k.str();
  if (n == "socket") return assign(c.socket_path, s.string(k, v));
  if (n == "socket_mode") return assign(c.socket_mode, socket_mode(s, k, v));
  if (n == "threads") return assign(c.threads, s.integer(k, v, 0, 1024));
  if (n == "default_model") return assign(c.default_model, s.string(k, v));
  if (n == "drain_grace_s") return assign(c.drain_grace_s, s.number(k, v, 0.0, 86400.0));
  if (n == "side_file_dirs") return assign(c.side_file_dirs, s.strings(k, v));
  if (n == "device") {
    SPECD_TRY(assign(c.device, s.string(k, v)));
    return device_ok(s, v, c.device);
  }
  if (n == "log_level") {
    auto text = s.string(k, v);
    if (!text) return text.error();
    auto level = parse_log_level(*text);
    if (!level) return s.error_at(v.source(), "'%s': %s", s.dotted(k).c_str(), level.error().message.c_str());
    c.log_level = *level;
    return {};
  }
  if (n == "device_memory_bytes") return assign(c.device_memory, s.integer(k, v, 0, std::numeric_limits<int64_t>::max()));
  return s.unknown(k);
}

Status read_runlog(const Section& s, const toml::key& k, const toml::node& v, Config& c) {
  const std::string_view n = k.str();
  if (n == "path") return assign(c.runlog_path, s.string(k, v));
  if (n == "max_rows") return assign(c.runlog_max_rows, s.integer(k, v, 0, std::numeric_limits<int64_t>::max()));
  if (n == "max_age_days") return assign(c.runlog_max_age_days, s.integer(k, v, 0, 1000000));
  if (n == "synchronous") {
    auto mode = s.string(k, v);
    if (!mode) return mode.error();
    if (*mode != "normal" && *mode != "full")
      return s.error_at(v.source(), "'%s' must be \"normal\" or \"full\"", s.dotted(k).c_str());
    c.runlog_sync_full = *mode == "full";
    return {};
  }
  return s.unknown(k);
}

Status read_http(const Section& s, const toml::key& k, const toml::node& v, Config& c) {
  const std::string_view n = k.str();
  HttpConfig& h = c.http;
  if (n == "listen") {
    if (!v.is_string()) return assign(h.listen, s.strings(k, v));
    auto one = s.string(k, v);  // one address may be given as a plain string
    if (!one) return one.error();
    h.listen = {one.value()};
    return {};
  }
  if (n == "api_key") return assign(h.api_key, s.string(k, v));
  if (n == "api_key_file") return assign(h.api_key_file, s.string(k, v));
  if (n == "max_body_bytes") return assign(h.max_body_bytes, s.integer(k, v, 1024, int64_t{1} << 30));
  if (n == "request_timeout_ms") return assign(h.request_timeout_ms, s.integer(k, v, 100, 3600000));
  if (n == "max_connections") return assign(h.max_connections, s.integer(k, v, 1, 1000000));
  return s.unknown(k);
}

Status read_limits(const Section& s, const toml::key& k, const toml::node& v, Config& c) {
  const std::string_view n = k.str();
  Limits& l = c.limits;
  if (n == "max_frame_bytes") return assign(l.max_frame_bytes, s.integer(k, v, 1024, int64_t{1} << 30));
  if (n == "max_connections") return assign(l.max_connections, s.integer(k, v, 1, 1000000));
  if (n == "max_concurrent") return assign(l.max_concurrent, s.integer(k, v, 1, 4096));
  if (n == "max_queued") return assign(l.max_queued, s.integer(k, v, 0, 1000000));
  if (n == "max_tokens") return assign(l.max_tokens, s.integer(k, v, 1, 1 << 24));
  if (n == "max_requests_per_connection") return assign(l.max_requests_per_connection, s.integer(k, v, 1, 1000000));
  if (n == "max_connections_per_uid") return assign(l.max_connections_per_uid, s.integer(k, v, 1, 1000000));
  if (n == "max_requests_per_uid") return assign(l.max_requests_per_uid, s.integer(k, v, 1, 1000000));
  if (n == "handshake_timeout_ms") return assign(l.handshake_timeout_ms, s.integer(k, v, 1, 3600000));
  if (n == "idle_timeout_ms") return assign(l.idle_timeout_ms, s.integer(k, v, 0, std::numeric_limits<int32_t>::max()));
  if (n == "kv_bytes") return assign(l.kv_bytes, s.integer(k, v, int64_t{1} << 20, std::numeric_limits<int64_t>::max()));
  if (n == "max_side_file_bytes") return assign(l.max_side_file_bytes, s.integer(k, v, 1024, int64_t{1} << 40));
  if (n == "plugin_bytes") return assign(l.plugin_bytes, s.integer(k, v, int64_t{1} << 20, std::numeric_limits<int64_t>::max()));
  return s.unknown(k);
}

Status read_access(const Section& s, const toml::key& k, const toml::node& v, Config& c) {
  if (k.str() == "allow_uids") return assign(c.allow_uids, s.ids(k, v));
  if (k.str() == "allow_gids") return assign(c.allow_gids, s.ids(k, v));
  return s.unknown(k);
}

Status read_plugins(const Section& s, const toml::key& k, const toml::node& v, Config& c) {
  if (k.str() == "dirs") return assign(c.plugin_dirs, s.strings(k, v));
  return s.unknown(k);
}

// [models]: name = "path", or name = { path = "path", device = "cuda:1" } to run it on its own
// device. toml++ keeps keys sorted, so file order (which picks the default model) comes from the
// keys' line numbers.
Status read_models(const Section& s, const toml::table& t, Config& c, std::string* first) {
  uint32_t first_line = std::numeric_limits<uint32_t>::max();
  for (const auto& [k, v] : t) {
    const std::string name(k.str());
    if (const toml::table* entry = v.as_table()) {
      const Section m(s.file(), s.dotted(k));
      for (const auto& [ek, ev] : *entry) {
        if (ek.str() == "path") {
          SPECD_TRY(assign(c.models[name], m.string(ek, ev)));
        } else if (ek.str() == "device") {
          SPECD_TRY(assign(c.model_devices[name], m.string(ek, ev)));
          SPECD_TRY(device_ok(m, ev, c.model_devices[name]));
        } else if (ek.str() == "device_memory_bytes") {
          SPECD_TRY(assign(c.model_device_memory[name], m.integer(ek, ev, 0, std::numeric_limits<int64_t>::max())));
        } else {
          return m.unknown(ek);
        }
      }
      if (!c.models.count(name)) return s.error_at(v.source(), "model '%s' has no path", name.c_str());
    } else {
      auto path = s.string(k, v);
      if (!path) return path.error();
      c.models[name] = path.value();
    }
    if (k.source().begin.line < first_line) {
      first_line = k.source().begin.line;
      *first = std::string(k.str());
    }
  }
  return {};
}

using KeyReader = Status (*)(const Section&, const toml::key&, const toml::node&, Config&);

Status read_section(const std::string& file, const toml::key& name, const toml::node& node, Config& c,
                    std::string* first_model) {
  const Section top(file, "");
  const std::string_view n = name.str();
  static const std::pair<std::string_view, KeyReader> readers[] = {
      {"daemon", read_daemon}, {"runlog", read_runlog}, {"limits", read_limits},
      {"access", read_access}, {"plugins", read_plugins}, {"http", read_http},
  };
  const bool known = n == "models" || std::any_of(std::begin(readers), std::end(readers),
                                                  [&](const auto& r) { return r.first == n; });
  if (!known) return top.unknown(name);
  const auto* t = node.as_table();
  if (!t) return top.error_at(node.source(), "'%s' must be a table ([%s])", std::string(n).c_str(), std::string(n).c_str());
  const Section s(file, std::string(n));
  if (n == "models") return read_models(s, *t, c, first_model);
  for (const auto& r : readers) {
    if (r.first != n) continue;
    for (const auto& [k, v] : *t) SPECD_TRY(r.second(s, k, v, c));
  }
  return {};
}

}  // namespace

Result<Config> parse_config(const std::string& toml_text, const std::string& file) {
  toml::table root;
  try {
    root = toml::parse(toml_text, file);
  } catch (const toml::parse_error& e) {
    return make_error(SPECD_E_INVALID_ARG, "%s:%u: %s", file.c_str(), static_cast<unsigned>(e.source().begin.line),
                      std::string(e.description()).c_str());
  }
  Config c;
  c.source = file;
  std::string first_model;
  for (const auto& [k, v] : root) SPECD_TRY(read_section(file, k, v, c, &first_model));
  if (c.default_model.empty()) {
    c.default_model = first_model;
  } else if (!c.models.count(c.default_model)) {
    return make_error(SPECD_E_INVALID_ARG, "%s: default_model '%s' is not in [models]", file.c_str(),
                      c.default_model.c_str());
  }
  return c;
}

Status finish_http_config(Config& cfg) {
  HttpConfig& h = cfg.http;
  if (!h.api_key_file.empty()) {
    std::ifstream f(h.api_key_file, std::ios::binary);
    std::string line;
    if (!f || !std::getline(f, line)) return make_error(SPECD_E_IO, "cannot read the HTTP API key file %s", h.api_key_file.c_str());
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) return make_error(SPECD_E_INVALID_ARG, "the HTTP API key file %s starts with an empty line", h.api_key_file.c_str());
    h.api_key = line;
  }
  for (const std::string& text : h.listen) {
    auto a = parse_http_address(text);
    if (!a) return a.error();
    if (!a->unix_socket && !a->loopback && h.api_key.empty())
      return make_error(SPECD_E_INVALID_ARG,
                        "refusing to serve HTTP on %s without an API key: a non-loopback address needs [http] api_key or "
                        "api_key_file (--api-key-file)", text.c_str());
  }
  return {};
}

Result<Config> load_config(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error(SPECD_E_IO, "cannot read config file %s: %s", path.c_str(), std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return make_error(SPECD_E_IO, "cannot read config file %s", path.c_str());
  return parse_config(ss.str(), path);
}

}  // namespace specd::daemon
