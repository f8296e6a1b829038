// refuse_http_connection: answers a connection the HTTP listener will not serve (too many open) with
// one whole HTTP response and closes it, without h2o, which never sees the connection.
//
// Closing right after the write would reset a connection whose request is still unread, and the
// peer would then lose the response; so the write side is shut first, and what the peer sends is
// read and dropped until it closes or kHttpRefusalLingerMs passes.
//
// Threading: the loop thread of the stream.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

namespace specd::daemon {

inline constexpr uint64_t kHttpRefusalLingerMs = 2000;

// The whole response: "HTTP/1.1 STATUS REASON", Content-Type: application/json, Content-Length,
// Connection: close, Retry-After: 1 for 429 and 503, then json_body. No errors.
std::string http_refusal_message(int status, const std::string& json_body);

// Takes the accepted stream (allocated with std::malloc; std::free'd once closed), writes response to
// it and closes it as above. No errors: a failed write or shutdown just closes the stream.
void refuse_http_connection(uv_stream_t* stream, std::string response);

}  // namespace specd::daemon
