// libFuzzer target for the client side of the wire: the client library's frame reader and the
// decoder of every message a daemon can send. Any byte stream, split anywhere, must give verified
// envelopes (each decoded field by field) or a SPECD_E_PROTOCOL error, never a crash.
#include "clients/frame_reader.h"
#include "clients/message_decode.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace sc = specd::clients;
namespace wire = specd::wire;

namespace {

uint64_t decode_body(const wire::Envelope& e) {
  if (e.body() == nullptr) return 0;  // the client refuses a union type without its table
  uint64_t sum = 0;
  if (const auto* w = e.body_as_Welcome()) {
    const sc::Welcome d = sc::decode_welcome(*w);
    sum += d.daemon_version.size() + d.max_frame_bytes;
  } else if (const auto* t = e.body_as_TokenEvent()) {
    const sc::TokenEventView d = sc::view_token_event(*t);
    sum += d.ids.size() + d.text.size();
    for (int32_t id : d.ids) sum += static_cast<uint64_t>(id);
    for (char c : d.text) sum += static_cast<uint8_t>(c);
  } else if (const auto* f = e.body_as_Finished()) {
    const sc::Finished d = sc::decode_finished(*f);
    sum += d.token_ids.size() + d.text.size() + d.reason.size() + static_cast<uint64_t>(d.run_id);
  } else if (const auto* s = e.body_as_StatusReply()) {
    const sc::StatusInfo d = sc::decode_status(*s);
    sum += d.models.size() + d.decoders.size() + d.daemon_version.size();
    for (const auto& m : d.models)
      for (const auto& t : m.weight_types) sum += t.type.size() + t.bytes + t.parameters;
  } else if (const auto* r = e.body_as_RunList()) {
    const sc::RunList d = sc::decode_run_list(*r);
    for (const auto& run : d.runs) sum += run.model.size() + run.decoder_options.size() + run.error.size();
  } else if (const auto* err = e.body_as_Error()) {
    const specd::Error d = sc::decode_error(*err);
    if (d.code >= 0) std::abort();  // decode_error promises a SPECD_E_* code
    sum += d.message.size();
  }
  return sum + std::string_view(sc::body_name(e.body_type())).size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 97;  // the first byte picks how the rest is cut into feeds
  std::vector<uint8_t> copy(data + 1, data + size);
  sc::FrameReader reader(1 << 16);
  for (size_t off = 0; off < copy.size(); off += chunk) {
    reader.feed(std::span<const uint8_t>(copy.data() + off, std::min(chunk, copy.size() - off)));
    for (;;) {
      auto next = reader.next();
      if (!next.has_value()) {
        if (next.error().code != SPECD_E_PROTOCOL) std::abort();
        return 0;  // the client closes the connection here
      }
      if (next.value() == nullptr) break;
      volatile uint64_t sink = decode_body(*next.value());
      (void)sink;
    }
  }
  return 0;
}
