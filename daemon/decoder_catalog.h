// What a loaded decoder says about itself for `specd decoders`, `specctl decoders` and the status
// reply: its options (ABI 1.2's table), lossless or lossy, and the files it needs. A 1.1 plugin
// has no table and is listed as "options not described".
#pragma once

#include "daemon/plugin_loader.h"

#include <string>
#include <vector>

namespace specd::daemon {

struct DecoderOption {
  std::string key, type, def, range, meaning;  // type: "int", "float", "string"
};

struct DecoderEntry {
  std::string name, version, description, path;
  bool described = false;  // the descriptor has ABI 1.2's table
  bool lossless = false;
  std::string needs;       // "" none
  std::vector<DecoderOption> options;
};

// Read d's descriptor, touching the 1.2 fields only when its struct_size covers them.
DecoderEntry decoder_entry(const LoadedDecoder& d);

// A block of text for people: the name line, then one line per option with its default and range.
std::string format_decoder(const DecoderEntry& e);

}  // namespace specd::daemon
