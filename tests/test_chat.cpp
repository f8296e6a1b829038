// `specctl chat` and `specctl models` end to end through a real daemon: a model's own chat template
// rendered as jinja2 renders it, plain continuation for a model without one, Ctrl-C stopping a
// turn, the socket's checks of a conversation, and the model facts against the GGUF file.
#include "engine/gguf_reader.h"
#include "engine/tokenizer.h"
#include "tests/chat_oracle.h"
#include "tests/daemon_harness.h"

#include <nlohmann/json.hpp>
#include <specd/error.h>

#include <sstream>
#include <sys/stat.h>

namespace specd::test {
namespace {

using json = nlohmann::json;

std::string specctl(const DaemonProcess& d) {
  return shell_quote(build_root() + "/clients/specctl") + " --socket " + shell_quote(d.socket()) + " ";
}

std::string text_of(const std::string& path) {
  const auto bytes = read_file(path);
  return std::string(bytes.begin(), bytes.end());
}

size_t count_of(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

// `specd generate` in-process, greedy: the text a chat turn must equal on the same prompt.
// prompt is "--prompt TEXT" or "--prompt-ids 1,2,3".
std::string generate_text(const std::string& model, const std::string& prompt, int max_tokens) {
  std::string out;
  REQUIRE(run_command(build_root() + "/daemon/specd generate --model " + shell_quote(model) + " " + prompt + " --max-tokens " +
                          std::to_string(max_tokens) + " --plugin-dir " + build_root() + "/plugins --json 2>/dev/null",
                      &out) == 0);
  return json::parse(out)["text"].get<std::string>();
}

std::string id_list(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s.append(s.empty() ? "" : ",").append(std::to_string(id));
  return s;
}

// A random-weight qwen2 model with Qwen2.5's real template, or "" when ../shared/data lacks them.
std::string qwen_chat_model() {
  const std::string vocab = shared_dir() + "/data/vocab/ggml-vocab-qwen2.gguf";
  const std::string tmpl = shared_dir() + "/data/templates/Qwen-Qwen2.5-7B-Instruct.jinja";
  if (run_command("test -f " + vocab + " && test -f " + tmpl, nullptr) != 0) return "";
  const std::string model = temp_dir() + "/qwen2-chat.gguf";
  std::string out;
  REQUIRE_MESSAGE(run_command(build_root() + "/tools/specd-random-model --arch qwen2 --vocab " + vocab + " --out " + model +
                                  " --chat-template " + tmpl + " 2>&1", &out) == 0, out);
  return model;
}

TEST_CASE("specctl chat, piped: two turns and /reset on a model with a template; the daemon's prompt is jinja2's") {
  const std::string model = qwen_chat_model();
  if (model.empty()) {
    MESSAGE("skipped: ../shared/data has no qwen2 vocabulary or Qwen2.5 template");
    return;
  }
  DaemonProcess d({"--model", "qwen=" + model});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  const std::string first = "Say \"hi\" twice — ünïcode 🙂", second = "Again.";
  write_file(d.dir() + "/in.txt", [&] {
    const std::string s = first + "\n" + second + "\n/reset\n" + first + "\n";
    return std::vector<uint8_t>(s.begin(), s.end());
  }());
  std::string out;
  REQUIRE(run_command(specctl(d) + "chat --model qwen --system 'You are terse.' --max-tokens 8 --json < " + d.dir() +
                          "/in.txt 2>" + d.dir() + "/err.txt", &out) == 0);
  const std::string err = text_of(d.dir() + "/err.txt");
  std::vector<json> turns;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) turns.push_back(json::parse(line));
  REQUIRE_MESSAGE(turns.size() == 3, out << err);
  CHECK(count_of(err, "TPF") == 3);
  CHECK(err.find("no chat template") == std::string::npos);
  CHECK(out.find("> ") == std::string::npos);  // no prompt when stdin is not a terminal

  // What the daemon rendered for turns 1 and 2, by jinja2 as apply_chat_template renders it.
  const json system = {{"role", "system"}, {"content", "You are terse."}};
  const json one = json::array({system, {{"role", "user"}, {"content", first}}});
  json two = one;
  two.push_back({{"role", "assistant"}, {"content", turns[0]["content"]}});
  two.push_back({{"role", "user"}, {"content", second}});
  auto file = engine::GgufFile::open(model);
  REQUIRE(file);
  auto tok = engine::Tokenizer::from_gguf(**file);
  REQUIRE(tok);
  std::vector<OracleJob> jobs;
  for (const json& messages : {one, two})
    jobs.push_back({shared_dir() + "/data/templates/Qwen-Qwen2.5-7B-Instruct.jinja",
                    {{"messages", messages}, {"add_generation_prompt", true}, {"bos_token", tok->token_text(tok->bos())},
                     {"eos_token", tok->token_text(tok->eos())}}});
  const auto oracle = run_oracle(jobs);
  REQUIRE(oracle.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    CAPTURE(i);
    REQUIRE_MESSAGE(oracle[i].ok, oracle[i].text);
    const std::vector<int32_t> ids = tok->tokenize(oracle[i].text, true, true);
    CHECK(turns[i]["usage"]["prompt_tokens"] == ids.size());
    // Greedy: the same answer means the same prompt ids.
    CHECK(turns[i]["content"] == generate_text(model, "--prompt-ids " + id_list(ids), 8));
  }
  // /reset forgot the first two turns: the third is the first again.
  CHECK(turns[2]["content"] == turns[0]["content"]);
  CHECK(turns[2]["usage"]["prompt_tokens"] == turns[0]["usage"]["prompt_tokens"]);
}

TEST_CASE("specctl chat on a model without a template: plain continuation, said once") {
  DaemonProcess d;
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  std::string out;
  REQUIRE(run_command("printf 'Once upon a time\\nThe dog\\n' | " + specctl(d) + "chat --max-tokens 16 2>" + d.dir() +
                          "/err.txt", &out) == 0);
  const std::string err = text_of(d.dir() + "/err.txt");
  CHECK_MESSAGE(count_of(err, "stories has no chat template: plain continuation") == 1, err);
  CHECK(count_of(err, "TPF") == 2);
  const std::string model = model_path("stories260K.gguf");
  const std::string t1 = generate_text(model, "--prompt 'Once upon a time'", 16);
  // The answer continues the text before it; the next user turn starts a line.
  const std::string t2 = generate_text(model, "--prompt " + shell_quote("Once upon a time" + t1 + "\nThe dog"), 16);
  CHECK(out == t1 + "\n" + t2 + "\n");
  // A message past the context is refused with the way out, and the chat goes on without it.
  std::string words;
  for (int i = 0; i < 3000; ++i) words += " dog";
  write_file(d.dir() + "/long.txt", [&] {
    const std::string s = words + "\nOnce upon a time\n";
    return std::vector<uint8_t>(s.begin(), s.end());
  }());
  out.clear();
  REQUIRE(run_command(specctl(d) + "chat --max-tokens 16 < " + d.dir() + "/long.txt 2>" + d.dir() + "/err.txt", &out) == 0);
  const std::string refused = text_of(d.dir() + "/err.txt");
  CHECK_MESSAGE(count_of(refused, "(/reset starts over)") == 1, refused);
  CHECK(out == t1 + "\n");
  // A model the daemon does not have is named before any turn.
  out.clear();
  CHECK(run_command("echo hi | " + specctl(d) + "chat --model nope 2>&1", &out) == 1);
  CHECK(out == "specctl: model 'nope' is not loaded (specctl models lists them)\n");
}

TEST_CASE("specctl chat: a turn the template refuses is reported and left out; the next turn runs") {
  const std::string vocab = shared_dir() + "/data/vocab/ggml-vocab-qwen2.gguf";
  if (run_command("test -f " + vocab, nullptr) != 0) {
    MESSAGE("skipped: ../shared/data has no qwen2 vocabulary");
    return;
  }
  const std::string dir = temp_dir();
  const std::string tmpl = dir + "/refuses.jinja";
  const std::string source =
      "{% for m in messages %}{% if m.content == 'boom' %}{{ raise_exception('no booms here') }}{% endif %}"
      "<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
      "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
  write_file(tmpl, std::vector<uint8_t>(source.begin(), source.end()));
  const std::string model = dir + "/refuses.gguf";
  std::string out;
  REQUIRE_MESSAGE(run_command(build_root() + "/tools/specd-random-model --arch qwen2 --vocab " + vocab + " --out " + model +
                                  " --chat-template " + tmpl + " 2>&1", &out) == 0, out);
  DaemonProcess d({"--model", "q=" + model});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  // On the socket: the template's own message, as SPECD_E_INVALID_ARG.
  RawClient c(d.socket());
  GenParams p;
  p.prompt_text.clear();
  p.model = "q";
  p.messages = {{"user", "boom"}};
  REQUIRE(c.send(generate_frame(1, p)));
  const GenOutcome o = collect(c, 1);
  CHECK(o.error_code == SPECD_E_INVALID_ARG);
  CHECK_MESSAGE(o.error_message.find("no booms here") != std::string::npos, o.error_message);
  // In the chat: said on stderr, and the refused message is not kept.
  out.clear();
  REQUIRE(run_command("printf 'boom\\nhello\\nhello\\n' | " + specctl(d) + "chat --model q --json --max-tokens 3 2>" + d.dir() +
                          "/err.txt", &out) == 0);
  const std::string err = text_of(d.dir() + "/err.txt");
  CHECK_MESSAGE(err.find("the model's chat template: no booms here\n") != std::string::npos, err);
  std::vector<json> turns;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) turns.push_back(json::parse(line));
  REQUIRE(turns.size() == 2);
  auto file = engine::GgufFile::open(model);
  REQUIRE(file);
  auto tok = engine::Tokenizer::from_gguf(**file);
  REQUIRE(tok);
  const std::string first = "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n";
  CHECK(turns[0]["usage"]["prompt_tokens"] == tok->tokenize(first, true, true).size());
}

TEST_CASE("specctl chat on a terminal: banner and prompt; Ctrl-C at the prompt twice leaves") {
  if (run_command("command -v script >/dev/null", nullptr) != 0) {
    MESSAGE("skipped: no script(1) to give specctl a terminal");
    return;
  }
  DaemonProcess d;
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  std::string out;
  // script(1) runs specctl on a pseudo-terminal and copies its input there; the terminal turns
  // the \003 bytes into SIGINT, as a key press would. The input stays open past `timeout 8`, so
  // only the two Ctrl-Cs can end the chat with status 0. script runs the command with $SHELL -c (sh
  // when SHELL is unset, as under CI): `exec` leaves no shell beside specctl, since dash, seeing the
  // terminal's SIGINT too, would kill itself with it after specctl's clean exit (status 130).
  const int rc = run_command("(printf 'Once upon a time\\n'; sleep 2; printf '\\003'; sleep 1; printf '\\003'; sleep 10) | "
                             "timeout 8 script -qfec " +
                                 shell_quote("exec " + build_root() + "/clients/specctl --socket " + d.socket() + " chat --max-tokens 8") +
                                 " /dev/null",
                             &out);
  CHECK_MESSAGE(rc == 0, out);
  CHECK(out.find("chatting with stories; /help lists the commands") != std::string::npos);
  CHECK(out.find("> ") != std::string::npos);
  CHECK(out.find("TPF 1.00") != std::string::npos);
  CHECK_MESSAGE(out.find("(Ctrl-C again or Ctrl-D to leave)") != std::string::npos, out);
}

// specctl with its stdin and stdout on pipes, stderr in a file.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::string& err_path) {
    int in[2], out[2];
    REQUIRE(::pipe(in) == 0);
    REQUIRE(::pipe(out) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(err, 2);
      ::close(in[1]);
      ::close(out[0]);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::signal(SIGINT, SIG_DFL);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    in_ = in[1];
    out_ = out[0];
  }
  ~Child() {
    close_input();
    if (out_ >= 0) ::close(out_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  void write(const std::string& s) { REQUIRE(::write(in_, s.data(), s.size()) == static_cast<ssize_t>(s.size())); }
  void close_input() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }
  // Output so far, waiting up to timeout_ms for some; "" at the end or on timeout.
  std::string read_some(int timeout_ms) {
    pollfd p{out_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return "";
    char buf[4096];
    const ssize_t n = ::read(out_, buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  void signal(int sig) const { ::kill(pid_, sig); }
  // The exit status, or -1 when it did not exit within timeout_ms.
  int wait(int timeout_ms) {
    for (int waited = 0; waited < timeout_ms; waited += 10) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
};

// Waits until the file holds needle.
bool file_gets(const std::string& path, const std::string& needle, int timeout_ms = 20000) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    if (text_of(path).find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST_CASE("specctl chat: Ctrl-C stops the turn, not the program; the next turn works; Ctrl-C at the prompt leaves") {
  DaemonProcess d({"--plugin-dir", build_root() + "/plugins", "--plugin-dir", build_root() + "/tests/plugins"});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  const std::string err = d.dir() + "/err.txt";
  // misbehave's "slow" mode sleeps 80 ms a step: 60 tokens outlast the signal by seconds.
  Child c({build_root() + "/clients/specctl", "--socket", d.socket(), "chat", "--decoder", "misbehave", "--decoder-opt",
           "mode=slow", "--max-tokens", "60"},
          err);
  c.write("Once upon a time\n");
  std::string shown;
  for (int i = 0; i < 100 && shown.empty(); ++i) shown = c.read_some(200);
  REQUIRE_MESSAGE(!shown.empty(), text_of(err) << d.log());
  c.signal(SIGINT);
  REQUIRE_MESSAGE(file_gets(err, ", cancel]"), text_of(err));
  c.write("/decoder ar\nOnce upon a time\n");
  REQUIRE_MESSAGE(file_gets(err, ", length]"), text_of(err));
  const std::string log = text_of(err);
  CHECK(log.find("(decoder ar)") != std::string::npos);
  CHECK(log.find(", cancel]") < log.find(", length]"));
  c.signal(SIGINT);  // at the prompt: leave
  CHECK(c.wait(10000) == 0);
}

TEST_CASE("the socket refuses a conversation it cannot render, by name") {
  DaemonProcess d;
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  RawClient c(d.socket());
  struct Case {
    const char* what;
    GenParams p;
    int32_t code;
    const char* message;
  };
  GenParams both;  // keeps its prompt_text
  both.messages = {{"user", "hi"}};
  GenParams no_role;
  no_role.prompt_text.clear();
  no_role.messages = {{"user", "hi"}, {"", "who am I"}};
  GenParams bad_text = no_role;
  bad_text.messages = {{"user", std::string("caf\xc3", 4)}};
  GenParams unknown = no_role;
  unknown.messages = {{"user", "hi"}};
  unknown.model = "nope";
  const Case cases[] = {
      {"messages beside a prompt", both, SPECD_E_INVALID_ARG, "messages and a prompt"},
      {"a message without a role", no_role, SPECD_E_INVALID_ARG, "messages[1] has no role"},
      {"text that is not UTF-8", bad_text, SPECD_E_INVALID_ARG, "messages[0].content is not valid UTF-8"},
      {"an unknown model", unknown, SPECD_E_UNKNOWN_MODEL, "model 'nope' is not loaded"},
  };
  uint64_t rid = 1;
  for (const Case& k : cases) {
    CAPTURE(k.what);
    REQUIRE(c.send(generate_frame(rid, k.p)));
    const GenOutcome o = collect(c, rid++);
    CHECK(o.error_code == k.code);
    CHECK_MESSAGE(o.error_message.find(k.message) != std::string::npos, o.error_message);
  }
  // Strict UTF-8: an overlong '/', a UTF-16 surrogate, a code point past U+10FFFF, a stray continuation byte.
  for (const std::string& bad : {std::string("\xc0\xaf"), std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"),
                                std::string("a\x80")}) {
    GenParams p = bad_text;
    p.messages = {{"user", bad}};
    REQUIRE(c.send(generate_frame(rid, p)));
    CHECK(collect(c, rid++).error_code == SPECD_E_INVALID_ARG);
  }
  // The connection serves on: a plain conversation, any character in it, generates.
  GenParams ok = no_role;
  ok.messages = {{"user", "Once upon a time \xf0\x9f\x99\x82 \xc3\xa9"}};
  ok.max_tokens = 4;
  REQUIRE(c.send(generate_frame(rid, ok)));
  const GenOutcome o = collect(c, rid);
  CHECK(o.finished);
  CHECK(o.generated_tokens == 4);
}

TEST_CASE("specctl models: architecture, parameters, weight types and file size as the GGUF file has them") {
  const std::string q8 = temp_dir() + "/stories-q8.gguf";
  std::string out;
  REQUIRE_MESSAGE(run_command(build_root() + "/tools/specd-quantize --model " + model_path("stories260K.gguf") + " --out " +
                                  q8 + " --type q8_0 2>&1", &out) == 0, out);
  DaemonProcess d({"--model", "q8=" + q8});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  out.clear();
  REQUIRE(run_command(specctl(d) + "models --json", &out) == 0);
  const json models = json::parse(out);
  REQUIRE(models.size() == 2);
  for (const json& m : models) {
    const std::string path = m["path"];
    CAPTURE(path);
    auto file = engine::GgufFile::open(path);
    REQUIRE(file);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK(m["file_bytes"] == static_cast<uint64_t>(st.st_size));
    uint64_t params = 0;
    std::map<std::string, std::pair<uint64_t, uint64_t>> types;  // type → (parameters, bytes)
    for (const auto& t : (*file)->tensors()) {
      const auto n = static_cast<uint64_t>(t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3]);
      params += n;
      types[ggml_type_name(t.type)].first += n;
      types[ggml_type_name(t.type)].second += t.nbytes;
    }
    CHECK(m["parameters"] == params);
    CHECK(m["architecture"] == "llama");
    CHECK(m["chat_template"] == false);
    CHECK(m["default"] == (m["name"] == "stories"));
    REQUIRE(m["weight_types"].size() == types.size());
    uint64_t last = UINT64_MAX;
    for (const json& t : m["weight_types"]) {
      const auto want = types.at(t["type"].get<std::string>());
      CHECK(t["parameters"] == want.first);
      CHECK(t["bytes"] == want.second);
      CHECK(t["bytes"].get<uint64_t>() <= last);  // the largest share first
      last = t["bytes"].get<uint64_t>();
    }
  }
  out.clear();
  REQUIRE(run_command(specctl(d) + "models", &out) == 0);
  CHECK_MESSAGE(out.find("stories (default)\n  llama, 292.80K parameters, context") != std::string::npos, out);
  CHECK(out.find("weights F32 100% (") != std::string::npos);
  CHECK(out.find("weights Q8_0 ") != std::string::npos);
  CHECK(out.find("chat plain text (no chat template)") != std::string::npos);
}

}  // namespace
}  // namespace specd::test
