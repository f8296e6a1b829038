// Test harness for the daemon: a real `specd serve` child process and a raw-frame client.
#pragma once

#include "daemon/frame_codec.h"
#include "daemon/run_log.h"
#include "protocol_generated.h"
#include "tests/test_support.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <deque>
#include <map>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace specd::test {

namespace fb = flatbuffers;

inline std::vector<uint8_t> envelope_frame(fb::FlatBufferBuilder& b, uint64_t rid, wire::Body type, fb::Offset<void> body) {
  b.Finish(wire::CreateEnvelope(b, rid, type, body));
  return daemon::frame_bytes(std::span<const uint8_t>(b.GetBufferPointer(), b.GetSize()));
}

inline std::vector<uint8_t> hello_frame(uint32_t version = 1) {
  fb::FlatBufferBuilder b;
  return envelope_frame(b, 0, wire::Body::Hello, wire::CreateHelloDirect(b, version, "test_daemon").Union());
}

struct GenParams {
  std::string prompt_text = "Once upon a time";
  std::vector<int32_t> prompt_ids;
  int32_t max_tokens = 64;
  float temperature = 0.0f;
  int32_t top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;
  std::string model;
  std::string decoder;
  std::string options;
  bool stream = true;
  std::vector<std::string> stop;  // stop strings
  bool keep_stop = false;         // a matched stop string stays in the text
  std::vector<std::pair<std::string, std::string>> messages;  // (role, content): sent only when non-empty
};

inline std::vector<uint8_t> generate_frame(uint64_t rid, const GenParams& p) {
  fb::FlatBufferBuilder b;
  // CreateString(std::string) keeps every byte, embedded NULs included.
  const auto model = b.CreateString(p.model);
  const auto prompt = b.CreateString(p.prompt_text);
  const auto ids = p.prompt_ids.empty() ? 0 : b.CreateVector(p.prompt_ids);
  const auto sampling = wire::CreateSampling(b, p.temperature, p.top_k, p.top_p, 0.0f, p.seed);
  const auto decoder = b.CreateString(p.decoder);
  const auto options = b.CreateString(p.options);
  const auto stop = p.stop.empty() ? 0 : b.CreateVectorOfStrings(p.stop);
  std::vector<fb::Offset<wire::ChatMessage>> turns;
  for (const auto& [role, content] : p.messages) turns.push_back(wire::CreateChatMessage(b, b.CreateString(role), b.CreateString(content)));
  const auto messages = turns.empty() ? 0 : b.CreateVector(turns);
  const auto g = wire::CreateGenerate(b, model, prompt, ids, p.max_tokens, sampling, stop, decoder, options, p.stream, p.keep_stop, messages);
  return envelope_frame(b, rid, wire::Body::Generate, g.Union());
}

template <class MakeBody>
std::vector<uint8_t> simple_frame(uint64_t rid, wire::Body type, MakeBody make) {
  fb::FlatBufferBuilder b;
  return envelope_frame(b, rid, type, make(b).Union());
}

// A pre-built listening socket, e.g. for socket activation.
inline int listening_socket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 16) == 0);
  return fd;
}

inline int connect_to(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// `specd serve` as a child process on a temp socket and run log; stderr goes to DIR/daemon.log.
class DaemonProcess {
 public:
  // listen_fd >= 0: pass it as the socket-activation fd 3 (LISTEN_FDS=1, LISTEN_PID = the child).
  explicit DaemonProcess(std::vector<std::string> extra = {}, int listen_fd = -1) : dir_(temp_dir()) {
    sock_ = dir_ + "/s.sock";
    db_ = dir_ + "/runs.db";
    std::vector<std::string> args = {build_root() + "/daemon/specd", "serve", "--model",
                                     "stories=" + model_path("stories260K.gguf"), "--socket", sock_, "--runlog", db_,
                                     "--threads", "2"};
    if (std::find(extra.begin(), extra.end(), "--plugin-dir") == extra.end())
      args.insert(args.end(), {"--plugin-dir", build_root() + "/plugins"});
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = spawn(args, listen_fd);
    if (listen_fd >= 0) ::close(listen_fd);
  }
  // A daemon still running is stopped with SIGTERM and must exit 0 (under ASan: without leaks).
  ~DaemonProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const int code = wait_exit(20000);
    CHECK_MESSAGE(code == 0, "specd serve exited with " << code << "; its log:\n" << log());
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // Wait until the socket accepts connections (or the child died).
  bool wait_ready(const std::string& path = "", int timeout_ms = 20000) {
    const std::string p = path.empty() ? sock_ : path;
    for (int waited = 0; waited < timeout_ms; waited += 20) {
      const int fd = connect_to(p);
      if (fd >= 0) {
        ::close(fd);
        return true;
      }
      if (::waitpid(pid_, &status_, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  void signal(int sig) const { ::kill(pid_, sig); }
  // Waits for the exit; returns the exit code, or 128 + signal, or -1 on timeout.
  int wait_exit(int timeout_ms = 30000) {
    for (int waited = 0; pid_ > 0 && waited < timeout_ms; waited += 10) {
      if (::waitpid(pid_, &status_, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (pid_ > 0) return -1;
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
  }
  std::string log() const {
    auto bytes = read_file(dir_ + "/daemon.log");
    return std::string(bytes.begin(), bytes.end());
  }
  const std::string& socket() const { return sock_; }
  const std::string& db() const { return db_; }
  const std::string& dir() const { return dir_; }
  pid_t pid() const { return pid_; }

 private:
  pid_t spawn(const std::vector<std::string>& args, int listen_fd) {
    const std::string logp = dir_ + "/daemon.log";
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid > 0) return pid;
    const int log = ::open(logp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(log, 1);
    ::dup2(log, 2);
    if (listen_fd >= 0) {
      ::dup2(listen_fd, 3);  // SD_LISTEN_FDS_START
      ::setenv("LISTEN_FDS", "1", 1);
      ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);  // exec keeps this pid
    } else {
      ::unsetenv("LISTEN_FDS");
      ::unsetenv("LISTEN_PID");
    }
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }

  std::string dir_, sock_, db_;
  pid_t pid_ = -1;
  int status_ = 0;
};

// A client speaking raw frames; every read has a deadline so a hung daemon fails the test.
class RawClient {
 public:
  enum Greet { kHello, kNoHello };
  // kHello: do the Hello/Welcome handshake first (the daemon requires it before anything else).
  explicit RawClient(const std::string& path, Greet greet = kHello) : fd_(connect_to(path)) {
    REQUIRE(fd_ >= 0);
    if (greet == kHello) REQUIRE_MESSAGE(hello(), "the daemon did not answer Hello with Welcome");
  }
  ~RawClient() { close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool send(const std::vector<uint8_t>& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // Send Hello and read the answer: true for a Welcome. No doctest assertions (safe off the main thread).
  bool hello() {
    if (!send(hello_frame())) return false;
    std::vector<uint8_t> frame;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = reader_.next(&frame);
      if (!r) return false;
      if (r.value()) return daemon::envelope_of(frame) && daemon::envelope_of(frame)->body_type() == wire::Body::Welcome;
      pollfd p{fd_, POLLIN, 0};
      const int ready = ::poll(&p, 1, 100);
      if (ready < 0) return false;
      if (ready == 0) continue;
      uint8_t buf[4096];
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n == 0) return false;
      if (n > 0) reader_.feed(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
    }
    return false;
  }
  // The next frame (verified), or an empty vector on EOF, error or timeout (eof() tells which).
  std::vector<uint8_t> recv(int timeout_ms = 20000) {
    std::vector<uint8_t> frame;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      auto r = reader_.next(&frame);
      REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
      if (r.value()) return frame;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) return {};
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) return {};
      uint8_t buf[65536];
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) {
        eof_ = true;
        return {};
      }
      reader_.feed(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
    }
  }
  // True when the daemon closed the connection within the timeout (frames before that are skipped).
  bool closed_by_peer(int timeout_ms = 10000) {
    while (!eof_) {
      if (recv(timeout_ms).empty() && !eof_) return false;
    }
    return true;
  }
  // The next frame about request rid: frames about other requests are kept for their own readers.
  std::vector<uint8_t> recv_for(uint64_t rid, int timeout_ms = 30000) {
    auto& box = stash_[rid];
    if (!box.empty()) {
      auto f = std::move(box.front());
      box.pop_front();
      return f;
    }
    for (;;) {
      auto f = recv(timeout_ms);
      if (f.empty()) return f;
      const uint64_t id = daemon::envelope_of(f)->request_id();
      if (id == rid) return f;
      stash_[id].push_back(std::move(f));
    }
  }
  // Put a frame back so the next recv_for(rid) sees it first.
  void unread(uint64_t rid, std::vector<uint8_t> frame) { stash_[rid].push_front(std::move(frame)); }
  bool eof() const { return eof_; }
  int fd() const { return fd_; }

 private:
  std::map<uint64_t, std::deque<std::vector<uint8_t>>> stash_;
  int fd_;
  daemon::FrameReader reader_{1u << 26};
  bool eof_ = false;
};

inline const wire::Envelope* env_of(const std::vector<uint8_t>& frame) {
  REQUIRE(!frame.empty());
  const wire::Envelope* e = daemon::envelope_of(frame);
  REQUIRE(e != nullptr);
  return e;
}

// Everything a Generate produced on the wire.
struct GenOutcome {
  std::vector<int32_t> streamed_ids;
  std::string streamed_text;
  int token_events = 0;
  bool finished = false;
  std::vector<int32_t> ids;  // Finished.token_ids
  std::string text;
  std::string reason;
  int32_t prompt_tokens = 0, generated_tokens = 0, forwards = 0;
  int64_t run_id = 0;
  int32_t error_code = 0;  // set when an Error ended it
  std::string error_name, error_message;
};

// Read frames until the request's Finished or Error; frames of other requests stay for their readers.
inline GenOutcome collect(RawClient& c, uint64_t rid, int timeout_ms = 30000) {
  GenOutcome o;
  for (;;) {
    const auto f = c.recv_for(rid, timeout_ms);
    REQUIRE_MESSAGE(!f.empty(), "no Finished/Error for request " << rid << (c.eof() ? " (connection closed)" : " (timeout)"));
    const wire::Envelope* e = env_of(f);
    if (const auto* t = e->body_as_TokenEvent()) {
      ++o.token_events;
      if (t->token_ids()) o.streamed_ids.insert(o.streamed_ids.end(), t->token_ids()->begin(), t->token_ids()->end());
      if (t->text()) o.streamed_text += t->text()->str();
    } else if (const auto* fin = e->body_as_Finished()) {
      o.finished = true;
      if (fin->token_ids()) o.ids.assign(fin->token_ids()->begin(), fin->token_ids()->end());
      o.text = fin->text() ? fin->text()->str() : "";
      o.reason = fin->reason() ? fin->reason()->str() : "";
      if (fin->usage()) {
        o.prompt_tokens = fin->usage()->prompt_tokens();
        o.generated_tokens = fin->usage()->generated_tokens();
        o.forwards = fin->usage()->forwards();
      }
      o.run_id = fin->run_id();
      return o;
    } else if (const auto* err = e->body_as_Error()) {
      o.error_code = err->code();
      o.error_name = err->name() ? err->name()->str() : "";
      o.error_message = err->message() ? err->message()->str() : "";
      return o;
    } else {
      FAIL("unexpected message type " << static_cast<int>(e->body_type()));
    }
  }
}

// Every row of a stopped daemon's run log, by id.
inline std::map<int64_t, daemon::RunRecord> read_runs(const std::string& db) {
  daemon::RunLogOptions o;
  o.path = db;
  auto log = daemon::RunLog::open(o);
  REQUIRE_MESSAGE(log.has_value(), (log ? "" : log.error().message));
  daemon::RunQuery q;
  q.last = 100000;
  auto rows = log.value()->query(q);
  REQUIRE(rows.has_value());
  std::map<int64_t, daemon::RunRecord> out;
  for (auto& r : rows.value()) out[r.id] = r;
  return out;
}

}  // namespace specd::test
