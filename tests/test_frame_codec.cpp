// Frames: reassembly at every split point, oversize, empty, garbage, and the daemon's encoders.
#include "daemon/frame_codec.h"
#include "daemon/wire_encode.h"
#include "protocol_generated.h"

#include <specd/decoder.h>

#include <doctest/doctest.h>

#include <random>

using namespace specd;
using daemon::FrameReader;

namespace {

std::vector<uint8_t> generate_frame(uint64_t rid, const std::string& prompt) {
  flatbuffers::FlatBufferBuilder b;
  const auto g = wire::CreateGenerateDirect(b, "stories", prompt.c_str());
  b.Finish(wire::CreateEnvelope(b, rid, wire::Body::Generate, g.Union()));
  return daemon::frame_bytes(std::span<const uint8_t>(b.GetBufferPointer(), b.GetSize()));
}

std::vector<std::vector<uint8_t>> drain(FrameReader& r) {
  std::vector<std::vector<uint8_t>> out;
  std::vector<uint8_t> f;
  for (;;) {
    auto n = r.next(&f);
    REQUIRE_MESSAGE(n.has_value(), (n ? "" : n.error().message));
    if (!n.value()) return out;
    out.push_back(f);
  }
}

Error error_of(FrameReader& r) {
  std::vector<uint8_t> f;
  auto n = r.next(&f);
  REQUIRE_FALSE(n.has_value());
  return n.error();
}

}  // namespace

TEST_CASE("frames: two frames split at every byte boundary come out whole and verified") {
  const auto a = generate_frame(1, "Once upon a time");
  const auto b = generate_frame(2, "The little dog");
  std::vector<uint8_t> stream = a;
  stream.insert(stream.end(), b.begin(), b.end());
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    CAPTURE(cut);
    FrameReader r(1 << 16);
    r.feed(std::span<const uint8_t>(stream.data(), cut));
    auto got = drain(r);
    r.feed(std::span<const uint8_t>(stream.data() + cut, stream.size() - cut));
    auto rest = drain(r);
    got.insert(got.end(), rest.begin(), rest.end());
    REQUIRE(got.size() == 2);
    CHECK(r.buffered() == 0);
    CHECK(daemon::envelope_of(got[0])->request_id() == 1);
    CHECK(daemon::envelope_of(got[1])->body_as_Generate()->prompt_text()->str() == "The little dog");
  }
}

TEST_CASE("frames: one byte at a time") {
  const auto a = generate_frame(7, "x");
  FrameReader r(1 << 16);
  std::vector<uint8_t> f;
  for (size_t i = 0; i < a.size(); ++i) {
    auto n = r.next(&f);
    REQUIRE(n.has_value());
    CHECK_FALSE(n.value());
    r.feed(std::span<const uint8_t>(&a[i], 1));
  }
  auto n = r.next(&f);
  REQUIRE(n.has_value());
  CHECK(n.value());
  CHECK(f.size() + 4 == a.size());
}

TEST_CASE("frames: oversize is refused as soon as the length arrives") {
  FrameReader r(100);
  const uint8_t prefix[4] = {101, 0, 0, 0};
  r.feed(prefix);
  const Error e = error_of(r);
  CHECK(e.code == SPECD_E_PROTOCOL);
  CHECK(e.message == "frame of 101 bytes exceeds the limit of 100");
  FrameReader big(1 << 20);
  const uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
  big.feed(huge);
  CHECK(error_of(big).message.find("exceeds the limit") != std::string::npos);
}

TEST_CASE("frames: empty and unverifiable frames are protocol errors; nothing is not") {
  FrameReader r(1 << 16);
  std::vector<uint8_t> f;
  auto n = r.next(&f);
  REQUIRE(n.has_value());
  CHECK_FALSE(n.value());
  const uint8_t empty[4] = {0, 0, 0, 0};
  r.feed(empty);
  CHECK(error_of(r).message == "empty frame");

  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<uint8_t> junk(4 + 1 + rng() % 200);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    const auto len = static_cast<uint32_t>(junk.size() - 4);
    for (int i = 0; i < 4; ++i) junk[static_cast<size_t>(i)] = static_cast<uint8_t>(len >> (8 * i));
    FrameReader g(1 << 16);
    g.feed(junk);
    auto res = g.next(&f);
    // Random bytes almost never verify; if they do, the envelope must be readable.
    if (res.has_value()) {
      REQUIRE(res.value());
      CHECK(daemon::envelope_of(f) != nullptr);
    } else {
      CHECK(res.error().message == "frame failed verification");
    }
  }
  CHECK(daemon::envelope_of({}) == nullptr);
  CHECK(daemon::envelope_of({1, 2, 3}) == nullptr);
}

TEST_CASE("frames: the daemon's encoders produce verifiable frames with their fields") {
  FrameReader r(1 << 20);
  daemon::DecodeResult res;
  res.tokens = {5, 6, 7};
  res.finish_reason = SPECD_FINISH_LENGTH;
  res.steps = 3;
  res.prefill_steps = 1;
  res.prefill_tokens = 1;
  res.emitted_hist = {0, 2};
  std::vector<uint8_t> all;
  for (const auto& f : {daemon::encode_welcome(1, {"0.1.0", 4096, 100, 511}),
                        daemon::encode_token_event(2, std::vector<int32_t>{5, 6}, "ab", 2),
                        daemon::encode_finished(2, res, 4, "abc", 77), daemon::encode_error(3, SPECD_E_UNKNOWN_DECODER, "nope"),
                        daemon::encode_run_list(4, {}, 3)})
    all.insert(all.end(), f.begin(), f.end());
  r.feed(all);
  const auto frames = drain(r);
  REQUIRE(frames.size() == 5);
  CHECK(daemon::envelope_of(frames[0])->body_as_Welcome()->max_prompt_tokens() == 511);
  CHECK(daemon::envelope_of(frames[1])->body_as_TokenEvent()->text()->str() == "ab");
  const auto* fin = daemon::envelope_of(frames[2])->body_as_Finished();
  REQUIRE(fin != nullptr);
  CHECK(fin->reason()->str() == "length");
  CHECK(fin->run_id() == 77);
  CHECK(fin->usage()->prompt_tokens() == 4);
  CHECK(fin->usage()->generated_tokens() == 3);
  CHECK(fin->usage()->tokens_per_forward() == doctest::Approx(1.0));
  const auto* err = daemon::envelope_of(frames[3])->body_as_Error();
  CHECK(err->name()->str() == "UNKNOWN_DECODER");
  CHECK(err->code() == SPECD_E_UNKNOWN_DECODER);
  CHECK(daemon::envelope_of(frames[4])->body_as_RunList()->dropped_log_entries() == 3);
}
