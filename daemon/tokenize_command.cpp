// `specd tokenize`: load only the vocabulary of a GGUF file (weights are never read, so llama.cpp's
// vocabulary-only ggml-vocab-*.gguf files work too) and print the ids of a text.
#include "daemon/tokenize_command.h"

#include "cli/command_line.h"
#include "engine/gguf_reader.h"
#include "engine/tokenizer.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace specd::daemon {
namespace {

constexpr const char* kHelp =
    "usage: specd tokenize -m PATH (--text TEXT | --file PATH) [options]\n"
    "  -m, --model PATH   a model or a vocabulary-only GGUF file (only tokenizer.ggml.* is read)\n"
    "  --ids              print one JSON array of ids (as llama-tokenize --ids) instead of id<TAB>piece lines\n"
    "  --no-bos           leave out the BOS (and EOS) the model would add\n"
    "  --parse-special    read special tokens written in the text (\"<|im_end|>\") as those tokens\n"
    "  -h, --help         this text;  --version  the version\n";

constexpr int32_t kUnknownType = 2, kControlType = 3;

// A piece as one printable field: control and unknown tokens show their text ("<|im_end|>"); other
// bytes print as they are except \\, tab, newline, CR and bytes that are not whole UTF-8 characters,
// which are escaped (\t \n \r \xHH), so each token stays on its own line.
std::string printable_piece(const engine::Tokenizer& tok, int32_t id) {
  const int32_t type = tok.token_type(id);
  const std::string bytes = (type == kControlType || type == kUnknownType) ? tok.token_text(id) : tok.piece(-1, id);
  std::string out;
  for (size_t i = 0; i < bytes.size();) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    for (size_t j = 1; j < n; ++j)
      if (i + j >= bytes.size() || (static_cast<unsigned char>(bytes[i + j]) & 0xC0) != 0x80) n = 0;
    if (n > 1) {
      out.append(bytes, i, n);
      i += n;
      continue;
    }
    char esc[8];
    if (c == '\\') out.append("\\\\");
    else if (c == '\t') out.append("\\t");
    else if (c == '\n') out.append("\\n");
    else if (c == '\r') out.append("\\r");
    else if (c >= 0x20 && c < 0x7F) out += static_cast<char>(c);
    else {
      std::snprintf(esc, sizeof esc, "\\x%02X", c);
      out.append(esc);
    }
    ++i;
  }
  return out;
}

Result<std::string> input_text(const cli::CliArgs& a) {
  if (a.has("text") == a.has("file")) return make_error(SPECD_E_INVALID_ARG, "give exactly one of --text and --file");
  if (a.has("text")) return a.str("text");
  std::ifstream f(a.str("file"), std::ios::binary);
  if (!f) return make_error(SPECD_E_IO, "cannot read %s", a.str("file").c_str());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

int tokenize_command(int argc, char** argv) {
  int exit_code = 0;
  const auto args = cli::parse_command_line("specd tokenize", kHelp, argc, argv, {"model", "text", "file"}, {"ids", "no-bos", "parse-special"},
                                       &exit_code);
  if (!args) return exit_code;
  const cli::CliArgs& a = *args;
  if (!a.has("model")) {
    std::fprintf(stderr, "specd tokenize: --model PATH is required\n%s", kHelp);
    return 2;
  }
  auto text = input_text(a);
  if (!text) {
    std::fprintf(stderr, "specd tokenize: %s\n", text.error().message.c_str());
    return text.error().code == SPECD_E_IO ? 1 : 2;
  }
  auto file = engine::GgufFile::open(a.str("model"));
  if (!file) {
    std::fprintf(stderr, "specd tokenize: cannot load %s: %s\n", a.str("model").c_str(), file.error().message.c_str());
    return 1;
  }
  auto tok = engine::Tokenizer::from_gguf(**file);
  if (!tok) {
    std::fprintf(stderr, "specd tokenize: cannot load the vocabulary of %s: %s\n", a.str("model").c_str(),
                 tok.error().message.c_str());
    return 1;
  }
  const std::vector<int32_t> ids = tok->tokenize(*text, !a.has("no-bos"), a.has("parse-special"));
  std::string out;
  if (a.has("ids")) {
    out = "[";
    for (size_t i = 0; i < ids.size(); ++i) out.append(i ? ", " : "").append(std::to_string(ids[i]));
    out.append("]\n");
  } else {
    for (int32_t id : ids) out.append(std::to_string(id)).append("\t").append(printable_piece(*tok, id)).append("\n");
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace specd::daemon
