// Error names and messages from SPECD_ERROR_MAP, and the printf-style Error constructor.
#include "kernels/result.h"

#include <cstdarg>

namespace specd {

const char* error_name(int code) {
#define SPECD_NAME_CASE(name, value, msg) \
  case value:                             \
    return #name;
  switch (SPECD_ERR_PRIMARY(code)) {
    case SPECD_OK:
      return "OK";
    SPECD_ERROR_MAP(SPECD_NAME_CASE)
    default:
      return "UNKNOWN";
  }
#undef SPECD_NAME_CASE
}

const char* error_string(int code) {
#define SPECD_MSG_CASE(name, value, msg) \
  case value:                            \
    return msg;
  switch (SPECD_ERR_PRIMARY(code)) {
    case SPECD_OK:
      return "ok";
    SPECD_ERROR_MAP(SPECD_MSG_CASE)
    default:
      return "unknown error";
  }
#undef SPECD_MSG_CASE
}

Error make_error(int code, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return Error{code, buf};
}

}  // namespace specd
