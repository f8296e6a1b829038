// DecodeRequest / DecodeResult: what a client asks the decoding runtime for and what it gets back.
#pragma once

#include "kernels/result.h"
#include "engine/sampler.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace specd::daemon {

struct DecodeRequest {
  std::vector<int32_t> prompt;            // non-empty token ids
  int32_t max_tokens = 128;
  engine::SamplingParams sampling;
  std::vector<int32_t> stop_tokens;       // the sequence ends after emitting one of these
  std::vector<std::string> stop_strings;  // ... or once the generated text contains one
  bool keep_stop = false;                 // the text given out keeps a matched stop string (default: stripped)
  std::string decoder = "ar";
  std::string options_json = "{}";        // decoder options, a JSON object
  // When the request reached the daemon, so TTFT counts its wait in the queue too; unset (the
  // epoch): from submit().
  std::chrono::steady_clock::time_point arrived{};
};

// Steps a decoder ran with one setting it chose (seq_note_setting, decoder ABI 1.2): a fixed-size
// label, so counting a step never allocates.
struct SettingCount {
  char label[32] = {};
  int64_t steps = 0;
};

struct DecodeResult {
  std::vector<int32_t> tokens;            // generated ids
  int32_t finish_reason = 0;              // SPECD_FINISH_*
  Error error{SPECD_OK, ""};              // set when finish_reason is SPECD_FINISH_ERROR
  int32_t steps = 0;                      // forwards this sequence took part in
  int32_t prefill_steps = 0;              // of which up to and including the first token
  int32_t prefill_tokens = 0;             // tokens emitted by those steps (1 for every built-in decoder)
  std::vector<int32_t> emitted_hist;      // emitted_hist[n] = decode steps that emitted n tokens
  double prefill_seconds = 0.0;           // arrival (or submit) → first token (TTFT)
  double decode_seconds = 0.0;            // first token → finish
  std::vector<SettingCount> settings;     // steps per setting the decoder chose, in first-use order
  // Decode tokens per forward (TPF): tokens after the prefill steps / the steps after them.
  double tokens_per_forward() const {
    const int32_t d = steps - prefill_steps;
    return d > 0 ? static_cast<double>(static_cast<int32_t>(tokens.size()) - prefill_tokens) / d : 0.0;
  }
};

// Engine-thread callbacks for one request; user is passed back untouched. on_tokens may be NULL.
// on_tokens gets the tokens a decoder's emit() took and their text: the tokenizer's pieces of
// exactly those tokens (each after the one before it), raw bytes that may end inside a UTF-8
// character. With stop strings the text is shifted: a tail that could start a stop string waits for
// the next call, and a matched stop string (and what follows it) is never given (unless keep_stop:
// then the text ends with it). A held-back tail is given when the sequence ends by a stop token or
// max_tokens; one that ends otherwise (cancel, context, error) drops it, at most a stop string's length. It is the only detokenization of generated tokens; text is valid during the call.
struct DecodeCallbacks {
  void (*on_tokens)(int64_t id, const int32_t* tokens, int32_t n, std::string_view text, void* user) = nullptr;
  void (*on_finished)(int64_t id, const DecodeResult& result, void* user) = nullptr;
  void* user = nullptr;
};

const char* finish_reason_name(int32_t reason);
// result.settings as a JSON object, {"k=4": 12, "plain": 3}, in first-use order; "{}" when none.
std::string settings_json(const DecodeResult& result);

}  // namespace specd::daemon
