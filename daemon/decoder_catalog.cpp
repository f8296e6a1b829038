// Decoder descriptions from plugin descriptors (see decoder_catalog.h).
#include "daemon/decoder_catalog.h"

#include <cstddef>

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

DecoderEntry decoder_entry(const LoadedDecoder& d) {
  const specd_decoder* desc = d.desc;
  DecoderEntry e;
  e.name = d.name;
  e.version = text(desc->version);
  e.description = text(desc->description);
  e.path = d.path;
  if (!SPECD_HAS(specd_decoder, desc, needs)) return e;
  e.described = true;
  e.lossless = (desc->flags & SPECD_DECODER_LOSSLESS) != 0;
  e.needs = text(desc->needs);
  if (!desc->options || desc->n_options == 0) return e;
  // The plugin's own entry size is the stride, so a later plugin's longer entries still read right.
  const size_t stride = desc->options->struct_size;
  if (stride < kOptionSize12) {
    e.described = false;  // not an entry this host can read
    return e;
  }
  const auto* base = reinterpret_cast<const unsigned char*>(desc->options);
  for (uint32_t i = 0; i < desc->n_options; ++i) {
    const auto* o = reinterpret_cast<const specd_option_desc*>(base + i * stride);
    e.options.push_back({text(o->key), type_name(o->type), text(o->def), text(o->range), text(o->meaning)});
  }
  return e;
}

std::string format_decoder(const DecoderEntry& e) {
  std::string out = e.name + " " + e.version + "  " + (e.described ? (e.lossless ? "lossless" : "lossy") : "lossless or lossy: not described") + "\n";
  out += "  " + e.description + "\n";
  out += "  file: " + e.path + "\n";
  if (!e.needs.empty()) out += "  needs: " + e.needs + "\n";
  if (!e.described) return out + "  options not described (an ABI 1.1 plugin)\n";
  if (e.options.empty()) return out + "  no options\n";
  out += "  options (--decoder-opt KEY=VALUE):\n";
  for (const DecoderOption& o : e.options) {
    out += "    " + o.key + " (" + o.type + (o.range.empty() ? "" : ", " + o.range) + ", default " + o.def + ")\n";
    out += "        " + o.meaning + "\n";
  }
  return out;
}

}  // namespace specd::daemon
