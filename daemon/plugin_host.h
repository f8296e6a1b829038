// The host side of the decoder ABI: the specd_host_api table handed to every decoder.
#pragma once

#include <specd/decoder.h>

namespace specd::daemon {

// The table for this build's ABI version (static storage).
const specd_host_api* host_api();

}  // namespace specd::daemon
