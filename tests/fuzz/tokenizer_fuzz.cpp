// libFuzzer target for the tokenizers: encode any bytes and decode any ids, with every vocabulary
// named in SPECD_FUZZ_VOCABS (':'-separated GGUF paths; bench/fuzz.sh sets it). The first input
// byte picks the vocabulary and whether BOS is added, the rest is the text; the same bytes read as
// little-endian pairs are also decoded as ids. Every id encode() gives must be in the vocabulary,
// and for vocabularies with all 256 byte tokens decode(encode(text)) must give valid UTF-8 text back.
#include "engine/gguf_reader.h"
#include "engine/tokenizer.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

using specd::engine::GgufFile;
using specd::engine::Tokenizer;

namespace {

struct Vocab {
  std::unique_ptr<GgufFile> file;
  Tokenizer tok;
  bool round_trips = false;  // every byte has a <0xXX> token, so no text is lost to UNK
};

std::vector<Vocab>& vocabs() {
  static std::vector<Vocab> v;
  return v;
}

bool has_all_byte_tokens(const Tokenizer& t) {
  int found = 0;
  for (int32_t id = 0; id < t.vocab_size(); ++id) {
    const std::string& p = t.token_text(id);
    found += p.size() == 6 && p.rfind("<0x", 0) == 0 && p[5] == '>';
  }
  return found >= 256;
}

// Invalid UTF-8 does not round-trip, on purpose: like llama.cpp, a lead byte claims the length its
// high bits say (0xff claims 4), so the bytes after it are split off their characters and a space
// among them comes back as U+2581's bytes. The property holds for valid text.
bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += n;
  }
  return true;
}

// SentencePiece writes a space as U+2581 and reads U+2581 back as a space, so a U+2581 in the text
// comes back as a space (llama.cpp does the same).
std::string spm_spaces(std::string s) {
  for (size_t at; (at = s.find("\xe2\x96\x81")) != std::string::npos;) s.replace(at, 3, " ");
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* list = std::getenv("SPECD_FUZZ_VOCABS");
  if (!list || !*list) {
    std::fprintf(stderr, "tokenizer_fuzz: set SPECD_FUZZ_VOCABS to ':'-separated GGUF files\n");
    std::exit(2);
  }
  std::stringstream in(list);
  for (std::string path; std::getline(in, path, ':');) {
    if (path.empty()) continue;
    auto f = GgufFile::open(path);
    if (!f) {
      std::fprintf(stderr, "tokenizer_fuzz: %s: %s\n", path.c_str(), f.error().message.c_str());
      std::exit(2);
    }
    auto t = Tokenizer::from_gguf(**f);
    if (!t) {  // a tokenizer type this engine does not have yet is skipped, and said
      std::fprintf(stderr, "tokenizer_fuzz: skipping %s: %s\n", path.c_str(), t.error().message.c_str());
      continue;
    }
    Vocab v{std::move(f.value()), std::move(t.value()), false};
    v.round_trips = has_all_byte_tokens(v.tok);
    vocabs().push_back(std::move(v));
  }
  if (vocabs().empty()) {
    std::fprintf(stderr, "tokenizer_fuzz: no vocabulary in SPECD_FUZZ_VOCABS could be loaded\n");
    std::exit(2);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Vocab& v = vocabs()[data[0] % vocabs().size()];
  const bool bos = (data[0] / vocabs().size()) % 2 == 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::vector<int32_t> ids = v.tok.encode(text, bos);
  for (int32_t id : ids)
    if (id < 0 || id >= v.tok.vocab_size()) std::abort();
  if (bos && (ids.empty() || ids[0] != v.tok.bos())) std::abort();
  const std::string back = v.tok.decode(ids);
  if (v.round_trips && bos && valid_utf8(text) && back != spm_spaces(text)) {
    std::fprintf(stderr, "round trip lost text: %zu bytes in, %zu out\n in:", text.size(), back.size());
    for (unsigned char c : text) std::fprintf(stderr, " %02x", c);
    std::fprintf(stderr, "\nout:");
    for (unsigned char c : back) std::fprintf(stderr, " %02x", c);
    std::fprintf(stderr, "\n");
    std::abort();
  }
  // Any in-range ids, streamed piece by piece as the daemon does.
  std::vector<int32_t> any;
  for (size_t i = 1; i + 1 < size; i += 2)
    any.push_back(static_cast<int32_t>((data[i] | (data[i + 1] << 8)) % v.tok.vocab_size()));
  std::string streamed;
  int32_t prev = v.tok.bos();
  for (int32_t id : any) {
    streamed += v.tok.piece(prev, id);
    prev = id;
  }
  if (streamed != v.tok.decode([&] {
        std::vector<int32_t> with_bos{v.tok.bos()};
        with_bos.insert(with_bos.end(), any.begin(), any.end());
        return with_bos;
      }()))
    std::abort();  // piece-by-piece streaming must agree with whole-sequence decode
  return 0;
}
