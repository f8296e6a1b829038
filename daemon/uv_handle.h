// UvHandle<T>: owns one heap-allocated libuv handle; its memory is freed only in the close callback.
//
// libuv keeps using a handle until uv_close's callback has run, so the wrapper hands the memory
// to that callback instead of freeing it in the destructor. The loop must run once more after a
// close for the memory to go (Server::run does, before uv_loop_close).
#pragma once

#include <uv.h>

#include <memory>
#include <utility>

namespace specd::daemon {

template <class T>
class UvHandle {
 public:
  UvHandle() : h_(std::make_unique<T>()) {}
  ~UvHandle() { close(); }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  UvHandle(UvHandle&& o) noexcept : h_(std::move(o.h_)), live_(std::exchange(o.live_, false)) {}

  T* get() const { return h_.get(); }
  uv_handle_t* handle() const { return reinterpret_cast<uv_handle_t*>(h_.get()); }
  uv_stream_t* stream() const { return reinterpret_cast<uv_stream_t*>(h_.get()); }
  // Call after the uv_*_init that succeeded: from then on only uv_close may free the memory.
  void initialized() { live_ = true; }
  bool live() const { return live_ && h_; }

  void close() {
    if (!h_) return;
    if (!live_) {
      h_.reset();
      return;
    }
    live_ = false;
    T* raw = h_.release();
    uv_close(reinterpret_cast<uv_handle_t*>(raw), [](uv_handle_t* h) { std::unique_ptr<T> free_me(reinterpret_cast<T*>(h)); });
  }

 private:
  std::unique_ptr<T> h_;
  bool live_ = false;
};

}  // namespace specd::daemon
