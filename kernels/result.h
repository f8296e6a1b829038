// Result<T>: the error-or-value type every fallible function in the engine and daemon returns.
#pragma once

#include <specd/error.h>

#include <cstdio>
#include <string>
#include <utility>
#include <variant>

namespace specd {

struct Error {
  int code = SPECD_E_INTERNAL;  // a SPECD_E_* code
  std::string message;          // for people: names the problem and, where known, where
};

// Name ("KV_FULL") and default message of a code; unknown codes get "unknown error N".
const char* error_name(int code);
const char* error_string(int code);

// printf-style constructor, so call sites read `return make_error(SPECD_E_BAD_MODEL, "truncated in %s", what);`
Error make_error(int code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// A small expected-like type (std::expected is C++23). Same member names keep a later switch easy.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}            // NOLINT(google-explicit-constructor)
  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const Error& error() const { return std::get<1>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : ok_(false), error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  bool ok_ = true;
  Error error_;
};

using Status = Result<void>;

}  // namespace specd

// Propagate an error from an expression returning Result<...>.
#define SPECD_TRY(expr)                                   \
  do {                                                    \
    auto specd_try_r_ = (expr);                           \
    if (!specd_try_r_.has_value()) return specd_try_r_.error(); \
  } while (0)
