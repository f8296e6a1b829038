/* specd error codes shared by the decoder ABI, the client API and the wire protocol.
 *
 * Codes are negative ints from one X-macro table; SPECD_OK is 0. An extended code keeps its
 * primary code in the low byte (primary - (n << 8)), so SPECD_ERR_PRIMARY() recovers a code an
 * older caller understands. Codes are never renumbered or reused. */
#ifndef SPECD_ERROR_H
#define SPECD_ERROR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SPECD_OK 0

/* X(NAME, value, "message") — primary codes. */
#define SPECD_ERROR_MAP(X)                                          \
  X(INVALID_ARG, -1, "invalid argument")                            \
  X(INTERNAL, -2, "internal error")                                 \
  X(NOMEM, -3, "out of memory")                                     \
  X(IO, -4, "I/O error")                                            \
  X(BAD_MODEL, -5, "malformed model file")                          \
  X(UNSUPPORTED, -6, "unsupported feature")                         \
  X(KV_FULL, -7, "kv cache full")                                   \
  X(CONTEXT, -8, "context length exceeded")                         \
  X(BAD_TOKEN, -9, "token id out of range")                         \
  X(CANCELED, -10, "generation canceled")                           \
  X(VERSION, -11, "version mismatch")                               \
  X(PLUGIN, -12, "decoder plugin misbehaved")                       \
  X(UNKNOWN_DECODER, -13, "unknown decoder")                        \
  X(UNKNOWN_MODEL, -14, "unknown model")                            \
  X(PROTOCOL, -15, "protocol error")                                \
  X(LIMIT, -16, "limit exceeded")                                   \
  X(BAD_OPTION, -17, "bad decoder option")                          \
  X(ACCESS, -18, "access denied")                                   \
  X(DEVICE, -19, "device error")

#define SPECD_ERROR_ENUM_ENTRY(name, value, msg) SPECD_E_##name = (value),
enum { SPECD_ERROR_MAP(SPECD_ERROR_ENUM_ENTRY) SPECD_E_LAST_PRIMARY_ = -19 };
#undef SPECD_ERROR_ENUM_ENTRY

/* The primary code of an extended code: the low byte, sign restored. */
#define SPECD_ERR_PRIMARY(rc) ((rc) >= 0 ? (rc) : -((-(rc)) & 0xff))

#ifdef __cplusplus
}
#endif

#endif /* SPECD_ERROR_H */
