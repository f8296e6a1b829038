// Metadata look-ups go to the model file first, then to the files the instance attached, so a
// decoder reads "specd.tidar.block_len" from the model and "specd.redrafter.*" from its drafter
// through the same call.
#include "daemon/host_files.h"

#include "daemon/decode_runtime.h"
#include "daemon/sequence_state.h"

#include <cstdarg>
#include <cstdio>
#include <optional>

namespace specd::daemon::host_files {
namespace {

// The first of the model file and the attached files for which get(file) has a value.
template <typename Get>
auto find_meta(const specd_host* h, Get get) -> decltype(get(h->rt->model().file())) {
  if (auto v = get(h->rt->model().file())) return v;
  for (const auto& f : h->attached)
    if (auto v = get(*f)) return v;
  return std::nullopt;
}

}  // namespace

int file_attach(specd_host* h, const char* path) {
  if (!h || !path || h->phase != Phase::Create) return SPECD_E_INVALID_ARG;
  auto f = h->rt->side_files().open(path);
  if (!f) {
    if (h->error.empty()) h->error = "decoder '" + h->decoder->name + "': " + f.error().message;
    return f.error().code;
  }
  h->attached.push_back(std::move(f.value()));
  return SPECD_OK;
}

int meta_int(specd_host* h, const char* key, int64_t* out) {
  if (!h || !key || !out) return SPECD_E_INVALID_ARG;
  const auto v = find_meta(h, [key](const engine::GgufFile& f) { return f.get_int(key); });
  if (!v) return SPECD_E_INVALID_ARG;
  *out = *v;
  return SPECD_OK;
}

int meta_float(specd_host* h, const char* key, double* out) {
  if (!h || !key || !out) return SPECD_E_INVALID_ARG;
  const auto v = find_meta(h, [key](const engine::GgufFile& f) { return f.get_float(key); });
  if (!v) return SPECD_E_INVALID_ARG;
  *out = *v;
  return SPECD_OK;
}

int meta_string(specd_host* h, const char* key, const char** out) {
  if (!h || !key || !out) return SPECD_E_INVALID_ARG;
  const auto v = find_meta(h, [key](const engine::GgufFile& f) { return f.get_string(key); });
  if (!v) return SPECD_E_INVALID_ARG;
  *out = h->strings.emplace_back(*v).c_str();
  return SPECD_OK;
}

int refuse(specd_host* h, int32_t code, const char* fmt, ...) {
  if (code >= 0) code = SPECD_E_PLUGIN;
  if (!h || !fmt || h->phase != Phase::Create) return code;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  h->error = "decoder '" + h->decoder->name + "': " + buf;  // the refusal is the reason, over earlier notes
  return code;
}

}  // namespace specd::daemon::host_files
