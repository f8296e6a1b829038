// libFuzzer target for the daemon's frame reader: any byte stream, split anywhere, must give verified
// envelopes or a SPECD_E_PROTOCOL error, never a crash or an out-of-bounds read.
#include "daemon/frame_codec.h"
#include "protocol_generated.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

using specd::daemon::FrameReader;
namespace wire = specd::wire;

namespace {

uint64_t sum_string(const flatbuffers::String* s) {
  uint64_t sum = 0;
  if (s)
    for (char c : s->string_view()) sum += static_cast<uint8_t>(c);
  return sum;
}

// Reads every field the daemon reads from the messages it accepts, so ASan checks each access.
uint64_t touch(const wire::Envelope* e) {
  uint64_t sum = e->request_id() + static_cast<uint64_t>(e->body_type());
  if (e->body() == nullptr) return sum;  // the daemon refuses a union type without its table
  if (const auto* g = e->body_as_Generate()) {
    sum += sum_string(g->model()) + sum_string(g->prompt_text()) + sum_string(g->decoder()) +
           sum_string(g->decoder_options_json()) + static_cast<uint64_t>(g->max_tokens()) + g->stream();
    if (g->prompt_ids())
      for (int32_t id : *g->prompt_ids()) sum += static_cast<uint64_t>(id);
    if (g->stop_strings())
      for (const auto* s : *g->stop_strings()) sum += sum_string(s);
    if (g->messages())
      for (const auto* m : *g->messages()) sum += sum_string(m->role()) + sum_string(m->content());
    if (const auto* s = g->sampling())
      sum += static_cast<uint64_t>(s->top_k()) + s->seed() + (s->temperature() > 0) + (s->top_p() > 0) + (s->min_p() > 0);
  } else if (const auto* h = e->body_as_Hello()) {
    sum += h->protocol_version() + sum_string(h->client_name());
  } else if (const auto* l = e->body_as_ListRuns()) {
    sum += static_cast<uint64_t>(l->last()) + sum_string(l->decoder()) + sum_string(l->model()) +
           static_cast<uint64_t>(l->since_unix_ms());
  }
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks how the rest is cut into feeds, so split points are fuzzed too.
  const size_t chunk = 1 + data[0] % 97;
  std::vector<uint8_t> copy(data + 1, data + size);  // exactly sized, so ASan sees overreads
  FrameReader reader(1 << 16);
  std::vector<uint8_t> frame;
  for (size_t off = 0; off < copy.size(); off += chunk) {
    reader.feed(std::span<const uint8_t>(copy.data() + off, std::min(chunk, copy.size() - off)));
    for (;;) {
      auto next = reader.next(&frame);
      if (!next.has_value()) {
        if (next.error().code != SPECD_E_PROTOCOL) std::abort();
        return 0;  // the daemon closes the connection here
      }
      if (!next.value()) break;
      const wire::Envelope* e = specd::daemon::envelope_of(frame);
      if (!e) std::abort();  // next() verified the frame, so envelope_of must agree
      volatile uint64_t sink = touch(e);
      (void)sink;
    }
  }
  return 0;
}
