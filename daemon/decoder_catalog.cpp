// Decoder descriptions from plugin descriptors (see decoder_catalog.h).
#include "daemon/decoder_catalog.h"

#include <cstddef>
#include <string>

namespace specd::daemon {
namespace {

std::string text(const char* s) { return s ? s : ""; }

const char* type_name(int32_t t) {
  switch (t) {
    case SPECD_OPTION_INT: return "int";
    case SPECD_OPTION_FLOAT: return "float";
    case SPECD_OPTION_STRING: return "string";
    default: return "?";
  }
}

// The smallest option entry the host reads: up to and including meaning.
constexpr size_t kOptionSize12 = offsetof(specd_option_desc, meaning) + sizeof(const char*);

}  // namespace

nlohmann::json decoder_json(const LoadedDecoder& d) {
  const specd_decoder* desc = d.desc;
  nlohmann::json j = {{"name", d.name}, {"version", text(desc->version)}, {"description", text(desc->description)},
                      {"path", d.path}, {"described", false}};
  if (!SPECD_HAS(specd_decoder, desc, needs)) return j;
  // The plugin's own entry size is the stride, so a later plugin's longer entries still read right;
  // a shorter one than 1.2's cannot be read, and the decoder stays "not described".
  const bool has_options = desc->options && desc->n_options > 0;
  const size_t stride = has_options ? desc->options->struct_size : kOptionSize12;
  if (stride < kOptionSize12) return j;
  nlohmann::json opts = nlohmann::json::array();
  const auto* base = reinterpret_cast<const unsigned char*>(desc->options);
  for (uint32_t i = 0; has_options && i < desc->n_options; ++i) {
    const auto* o = reinterpret_cast<const specd_option_desc*>(base + i * stride);
    opts.push_back({{"key", text(o->key)}, {"type", type_name(o->type)}, {"default", text(o->def)},
                    {"range", text(o->range)}, {"meaning", text(o->meaning)}});
  }
  j["described"] = true;
  j["lossless"] = (desc->flags & SPECD_DECODER_LOSSLESS) != 0;
  j["needs"] = text(desc->needs);
  j["options"] = std::move(opts);
  return j;
}

}  // namespace specd::daemon
