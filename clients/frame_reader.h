// FrameReader: reassembles the wire protocol's length-prefixed frames from received bytes and verifies each.
#pragma once

#include "kernels/result.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace specd::wire {
struct Envelope;
}

namespace specd::clients {

// Size of the little-endian length that precedes every FlatBuffer on the wire.
inline constexpr size_t kFramePrefixBytes = 4;

class FrameReader {
 public:
  explicit FrameReader(uint32_t max_frame_bytes) : max_(max_frame_bytes) {}
  void feed(std::span<const uint8_t> bytes);
  // The next complete frame's Envelope, verified, or nullptr when no complete frame is buffered.
  // It points into this reader and stays valid until the next call to next() or feed().
  // Errors (the connection cannot continue after any of them): SPECD_E_PROTOCOL "frame of N bytes
  // exceeds the limit of M bytes", "empty frame", "frame of N bytes failed verification".
  Result<const wire::Envelope*> next();
  size_t buffered() const { return buf_.size() - pos_; }
  // True when next() would return a frame or an error without more input.
  bool has_frame() const;

 private:
  uint32_t max_;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;
  // The current frame, copied out of buf_ so it starts at an allocation boundary: the verifier
  // (and the FlatBuffer's 8-byte scalars) need an aligned root, which buf_ + pos_ is not.
  std::vector<uint8_t> frame_;
};

// Append flatbuffer to out, prefixed with its length as the wire wants it.
void append_frame(std::vector<uint8_t>* out, std::span<const uint8_t> flatbuffer);

}  // namespace specd::clients
