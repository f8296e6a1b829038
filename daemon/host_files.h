// Metadata, side files and create-time refusals offered to decoders (ABI 1.1).
#pragma once

#include <specd/decoder.h>

namespace specd::daemon::host_files {

int file_attach(specd_host* h, const char* path);
int meta_int(specd_host* h, const char* key, int64_t* out);
int meta_float(specd_host* h, const char* key, double* out);
int meta_string(specd_host* h, const char* key, const char** out);
int refuse(specd_host* h, int32_t code, const char* fmt, ...) SPECD_PRINTF(3, 4);

}  // namespace specd::daemon::host_files
