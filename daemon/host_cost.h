// The cost model and the settings record offered to decoders (decoder ABI 1.2), and the memory a
// decoder keeps across requests (1.3).
#pragma once

#include <specd/decoder.h>

namespace specd::daemon::host_cost {

double step_cost(specd_host* h, int32_t rows);
double seq_decoder_cost(specd_seq* s);
int seq_note_setting(specd_seq* s, const char* label);
void* decoder_memory(specd_host* h, size_t size);

}  // namespace specd::daemon::host_cost
