// PreTokenizer: the published pre-tokenizer regexes per tokenizer.ggml.pre, run with PCRE2.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "engine/pretokenizer.h"

#include <pcre2.h>

#include <array>
#include <initializer_list>

namespace specd::engine {
namespace {

// The regexes of the tokenizers' tokenizer.json files, as llama.cpp's llama-vocab.cpp lists them per
// pre type, in PCRE2 syntax (\x{...} for code points outside the ASCII range). `(?i:'s|...)` is
// spelled out case by case, as llama.cpp does, so (?i) never reaches non-ASCII letters.
constexpr const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr const char* kContractions = R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))";
constexpr const char* kLlama3Tail =
    R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Tail =
    R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen35Tail =
    R"(|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// DeepSeek LLM's letter class: the cased letters (Lu, Ll, Lt) of the Unicode version its tokenizer
// was made with, range by range as its tokenizer.json lists them.
constexpr const char* kDeepseekLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF})"
    R"(\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1})"
    R"(\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5})"
    R"(\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A})"
    R"(\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B})"
    R"(\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC})"
    R"(\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107})"
    R"(\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134})"
    R"(\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4})"
    R"(\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787})"
    R"(\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A})"
    R"(\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2})"
    R"(\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)";
// CJK ideographs, everything from U+0800 up to them, and Hangul syllables (DeepSeek's "[一-龥ࠀ-一가-퟿]+").
constexpr const char* kDeepseekCjk = R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";

struct PreSpec {
  std::string_view name;
  std::vector<std::string> regexes;
  bool ignore_merges;
};

std::string cat(std::initializer_list<const char*> parts) {
  std::string s;
  for (const char* p : parts) s.append(p);
  return s;
}

const std::vector<PreSpec>& specs() {
  static const std::vector<PreSpec> table = [] {
    const std::string llama3 = cat({kContractions, kLlama3Tail});
    const std::string qwen2 = cat({kContractions, kQwen2Tail});
    const std::vector<std::string> starcoder{R"(\p{N})", kGpt2};
    const std::vector<std::string> deepseek_llm{
        R"([\r\n])", kDeepseekLetters, R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)",
        R"(\s+$)", kDeepseekCjk, R"(\p{N}+)"};
    const std::vector<std::string> deepseek_coder{R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kDeepseekCjk,
                                                  R"(\p{N})"};
    const std::vector<std::string> falcon{R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, R"([0-9][0-9][0-9])"};
    return std::vector<PreSpec>{
        {"llama-bpe", {llama3}, true},
        {"llama3", {llama3}, true},
        {"llama-v3", {llama3}, true},
        {"qwen2", {qwen2}, false},
        {"deepseek-r1-qwen", {qwen2}, false},
        {"qwen35", {cat({kContractions, kQwen35Tail})}, false},
        {"gpt-2", {kGpt2}, false},
        {"phi-2", {kGpt2}, false},
        {"mpt", {kGpt2}, false},
        {"deepseek-llm", deepseek_llm, false},
        {"deepseek-coder", deepseek_coder, false},
        {"falcon", falcon, false},
        {"starcoder", starcoder, false},
        {"refact", starcoder, false},
        {"command-r", starcoder, false},
    };
  }();
  return table;
}

// Length of the UTF-8 sequence that starts with byte c (1 for a stray or invalid byte).
size_t char_len(unsigned char c) {
  return c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 1;
}

}  // namespace

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

std::vector<std::string_view> PreTokenizer::supported() {
  std::vector<std::string_view> names;
  for (const PreSpec& s : specs()) names.push_back(s.name);
  return names;
}

Result<PreTokenizer> PreTokenizer::create(std::string_view pre) {
  const PreSpec* spec = nullptr;
  for (const PreSpec& s : specs())
    if (s.name == pre) spec = &s;
  if (!spec)
    return make_error(SPECD_E_UNSUPPORTED, "tokenizer.ggml.pre '%.*s' is not a supported pre-tokenizer",
                      static_cast<int>(pre.size()), pre.data());
  PreTokenizer p;
  p.name_ = std::string(pre);
  p.ignore_merges_ = spec->ignore_merges;
  for (const std::string& rx : spec->regexes) {
    int err = 0;
    PCRE2_SIZE err_off = 0;
    auto r = std::make_shared<Regex>();
    r->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rx.data()), rx.size(),
                            PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &err_off, nullptr);
    if (!r->code) {
      std::array<PCRE2_UCHAR, 256> msg{};
      pcre2_get_error_message(err, msg.data(), msg.size());
      return make_error(SPECD_E_INTERNAL, "pre-tokenizer '%s': regex does not compile at %zu: %s", p.name_.c_str(),
                        static_cast<size_t>(err_off), reinterpret_cast<const char*>(msg.data()));
    }
    pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE);  // optional: the interpreter runs when JIT is unavailable
    p.regexes_.push_back(std::move(r));
  }
  return p;
}

std::vector<std::pair<size_t, size_t>> PreTokenizer::split(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> pieces;
  if (text.empty()) return pieces;
  pieces.emplace_back(0, text.size());
  std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> md(pcre2_match_data_create(1, nullptr),
                                                                     pcre2_match_data_free);
  for (const auto& rx : regexes_) {
    std::vector<std::pair<size_t, size_t>> next;
    next.reserve(pieces.size() * 2);
    for (const auto& [off, len] : pieces) {
      // The piece is the whole subject: `$` and lookaheads see its end, not the text's.
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + off);
      size_t pos = 0, done = 0;
      while (pos <= len) {
        const int rc = pcre2_match(rx->code, subject, len, pos, 0, md.get(), nullptr);
        if (rc < 0) break;  // PCRE2_ERROR_NOMATCH, or a match limit: the rest stays one piece
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
        const size_t b = ov[0], e = ov[1];
        if (e == b) {  // an empty match isolates nothing; step over one character
          pos = b + (b < len ? char_len(static_cast<unsigned char>(text[off + b])) : 1);
          continue;
        }
        if (b > done) next.emplace_back(off + done, b - done);
        next.emplace_back(off + b, e - b);
        done = pos = e;
      }
      if (done < len) next.emplace_back(off + done, len - done);
    }
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace specd::engine
