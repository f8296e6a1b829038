// FrameReader: length-prefixed frames reassembled from a byte stream and run through the verifier.
#include "daemon/frame_codec.h"

#include "protocol_generated.h"

#include <cstring>

namespace specd::daemon {
namespace {

constexpr size_t kPrefix = 4;

uint32_t read_le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

bool verified(const uint8_t* data, size_t size) {
  // Depth and table counts bound the verifier's own work on hostile input.
  flatbuffers::Verifier v(data, size, /*max_depth=*/32, /*max_tables=*/100000);
  return wire::VerifyEnvelopeBuffer(v);
}

}  // namespace

void FrameReader::feed(std::span<const uint8_t> bytes) {
  // Drop consumed bytes before growing, so a long-lived connection's buffer stays one frame big.
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ >= buf_.size() / 2)) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

Result<bool> FrameReader::next(std::vector<uint8_t>* out) {
  if (buffered() < kPrefix) return false;
  const uint32_t n = read_le32(buf_.data() + pos_);
  // Checked as soon as the prefix arrives, so an oversize frame is never buffered.
  if (n == 0) return make_error(SPECD_E_PROTOCOL, "empty frame");
  if (n > max_) return make_error(SPECD_E_PROTOCOL, "frame of %u bytes exceeds the limit of %u", n, max_);
  if (buffered() < kPrefix + n) return false;
  const uint8_t* body = buf_.data() + pos_ + kPrefix;
  out->assign(body, body + n);
  pos_ += kPrefix + n;
  // Verified in *out, whose heap storage is suitably aligned for the FlatBuffer's scalars.
  if (!verified(out->data(), out->size())) return make_error(SPECD_E_PROTOCOL, "frame failed verification");
  return true;
}

const wire::Envelope* envelope_of(const std::vector<uint8_t>& frame) {
  if (frame.empty() || !verified(frame.data(), frame.size())) return nullptr;
  return wire::GetEnvelope(frame.data());
}

std::vector<uint8_t> frame_bytes(std::span<const uint8_t> flatbuffer) {
  std::vector<uint8_t> out(kPrefix + flatbuffer.size());
  const auto n = static_cast<uint32_t>(flatbuffer.size());
  for (size_t i = 0; i < kPrefix; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  if (!flatbuffer.empty()) std::memcpy(out.data() + kPrefix, flatbuffer.data(), flatbuffer.size());
  return out;
}

}  // namespace specd::daemon
