// decoder ABI 1.2: step_cost / seq_decoder_cost read the runtime's CostModel; seq_note_setting
// counts steps per setting label in the sequence's result (reserved at admission: no allocation).
// decoder ABI 1.3: decoder_memory is the runtime's block for the instance's decoder.
#include "daemon/host_cost.h"

#include "daemon/decode_runtime.h"
#include "daemon/sequence_state.h"

#include <cstring>

namespace specd::daemon::host_cost {

double step_cost(specd_host* h, int32_t rows) {
  if (!h || !h->rt || rows <= 0) return 0.0;
  // The rows the other sequences put in the last forward; they are likely there again this step.
  const int32_t own = h->seq ? h->seq->last_rows : 0;
  const int32_t others = h->rt->last_step_rows() - own;
  return h->rt->cost().relative_on_top(others > 0 ? others : 0, rows);
}

double seq_decoder_cost(specd_seq* s) {
  if (!s || !s->rt) return 0.0;
  const double one = s->rt->cost().one_row_seconds();
  if (one > 0.0) return s->decoder_seconds / one;
  return 0.0;  // nothing measured yet: no unit to express it in
}

int seq_note_setting(specd_seq* s, const char* label) {
  if (!s || !label || !*label) return SPECD_E_INVALID_ARG;
  auto& v = s->result.settings;
  constexpr size_t keep = sizeof(SettingCount::label) - 1;
  for (SettingCount& c : v)
    if (std::strncmp(c.label, label, keep) == 0) {
      ++c.steps;
      return SPECD_OK;
    }
  if (v.size() >= kMaxSettings) return SPECD_E_LIMIT;
  SettingCount c;
  std::strncpy(c.label, label, keep);
  c.steps = 1;
  v.push_back(c);
  return SPECD_OK;
}

void* decoder_memory(specd_host* h, size_t size) {
  if (!h || !h->rt || !h->decoder || size == 0 || size > SPECD_DECODER_MEMORY_MAX) return nullptr;
  return h->rt->decoder_memory(h->decoder->name, size);
}

}  // namespace specd::daemon::host_cost
