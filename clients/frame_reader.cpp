// FrameReader and append_frame: the client's side of the wire framing (4-byte LE length + Envelope).
#include "clients/frame_reader.h"

#include "protocol_generated.h"

#include <string>

namespace specd::clients {
namespace {

uint32_t read_le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

}  // namespace

void FrameReader::feed(std::span<const uint8_t> bytes) {
  // Drop consumed bytes before growing, so the buffer stays about one frame big.
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ >= buf_.size() / 2)) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

bool FrameReader::has_frame() const {
  if (buffered() < kFramePrefixBytes) return false;
  const uint32_t n = read_le32(buf_.data() + pos_);
  return n == 0 || n > max_ || buffered() >= kFramePrefixBytes + n;
}

Result<const wire::Envelope*> FrameReader::next() {
  if (buffered() < kFramePrefixBytes) return static_cast<const wire::Envelope*>(nullptr);
  const uint32_t n = read_le32(buf_.data() + pos_);
  // Checked as soon as the prefix arrives, so an oversize frame is never buffered.
  if (n == 0) return Error{SPECD_E_PROTOCOL, "empty frame"};
  if (n > max_)
    return Error{SPECD_E_PROTOCOL, "frame of " + std::to_string(n) + " bytes exceeds the limit of " +
                                       std::to_string(max_) + " bytes"};
  if (buffered() < kFramePrefixBytes + n) return static_cast<const wire::Envelope*>(nullptr);
  const uint8_t* body = buf_.data() + pos_ + kFramePrefixBytes;
  frame_.assign(body, body + n);
  pos_ += kFramePrefixBytes + n;
  // Depth and table counts bound the verifier's own work on hostile input.
  flatbuffers::Verifier verifier(frame_.data(), frame_.size(), /*max_depth=*/32, /*max_tables=*/1000000);
  if (!wire::VerifyEnvelopeBuffer(verifier))
    return Error{SPECD_E_PROTOCOL, "frame of " + std::to_string(n) + " bytes failed verification"};
  return wire::GetEnvelope(frame_.data());
}

void append_frame(std::vector<uint8_t>* out, std::span<const uint8_t> flatbuffer) {
  const auto n = static_cast<uint32_t>(flatbuffer.size());
  for (size_t i = 0; i < kFramePrefixBytes; ++i) out->push_back(static_cast<uint8_t>(n >> (8 * i)));
  out->insert(out->end(), flatbuffer.begin(), flatbuffer.end());
}

}  // namespace specd::clients
