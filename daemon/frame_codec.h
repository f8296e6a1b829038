// Frames of the wire protocol (abi/specd/protocol.fbs): 4-byte little-endian length + one verified
// FlatBuffer Envelope. FrameReader reassembles frames from a byte stream; encode_* build frames.
#pragma once

#include "kernels/result.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace specd::wire {
struct Envelope;
}

namespace specd::daemon {

class FrameReader {
 public:
  explicit FrameReader(uint32_t max_frame_bytes) : max_(max_frame_bytes) {}
  // Append received bytes.
  void feed(std::span<const uint8_t> bytes);
  // The next complete frame, verified: fills *out with the FlatBuffer bytes (without the length
  // prefix) and returns true; returns false when no complete frame is buffered yet.
  // Errors: SPECD_E_PROTOCOL "frame of N bytes exceeds the limit of M" (the connection must be
  // closed), SPECD_E_PROTOCOL "frame failed verification" (likewise), "empty frame".
  Result<bool> next(std::vector<uint8_t>* out);
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  uint32_t max_;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;
};

// The verified root of a frame's bytes (as returned by FrameReader::next), or nullptr.
const wire::Envelope* envelope_of(const std::vector<uint8_t>& frame);

// Prefix a finished FlatBuffer with its 4-byte little-endian length.
std::vector<uint8_t> frame_bytes(std::span<const uint8_t> flatbuffer);

}  // namespace specd::daemon
