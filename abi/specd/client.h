/* specd client library (libspecd-client.so.1) 1.2: generate with the specd daemon, read its status and run log.
 *
 * Handles. specd_client is one connection to the daemon: made by specd_client_connect, ended by
 * specd_client_close. specd_gen is one generation request on a client: made by specd_generate,
 * ended when its on_done callback returns. Results (specd_gen_result, specd_status, specd_runs)
 * are allocated by the library and freed with their own *_free function, never with free().
 *
 * Threads. A specd_client and its specd_gens belong to one thread at a time; separate clients are
 * independent. Callbacks run only inside specd_client_poll, specd_generate_sync,
 * specd_client_status, specd_client_list_runs and specd_client_close (the last on_done of requests
 * still outstanding), on the thread that called them. The one call that is safe from any thread,
 * and from inside callbacks, is specd_gen_cancel. The library creates no threads, keeps no global
 * state, installs no signal handlers, never prints, and sends with MSG_NOSIGNAL, so a daemon that
 * goes away never raises SIGPIPE. The wire protocol is abi/specd/protocol.fbs (version 1).
 *
 * Event loops. Either call specd_client_poll(c, timeout_ms) in a loop, or add specd_client_fd(c)
 * to your own epoll/poll/libuv loop (as readable) and call specd_client_poll(c, 0) when it fires.
 *
 * Requests. Each specd_generate that returns SPECD_OK gets exactly one on_done, also after a
 * cancel, a lost connection or specd_client_close; after on_done returns the library never touches
 * that request or its user pointer again. Many generations may run at once on one client.
 *
 * Errors. Functions return SPECD_OK (0) or a negative SPECD_E_* code (specd/error.h); a function
 * returns a positive value only where its docs say it returns a count. Messages travel with the
 * result: in an optional caller-owned specd_error, or as on_done's message. Codes this library
 * does not know (from a newer daemon) are passed through; specd_strerror and specd_err_name
 * accept them.
 *
 * Versioning. SPECD_CLIENT_VERSION_NUMBER is M*1000000 + m*1000 + p; the soname carries M. Every
 * struct crossing this API starts with uint32_t struct_size, set by whoever fills it with sizeof as
 * they compiled it; structs only grow at the end, and a reader uses a field only when
 * SPECD_HAS(T, p, field) says struct_size covers it. Input structs are initialised with their
 * *_init function (an inline passing the caller's sizeof), never built from scratch. */
#ifndef SPECD_CLIENT_H
#define SPECD_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "specd/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SPECD_CLIENT_VERSION_MAJOR 1
#define SPECD_CLIENT_VERSION_MINOR 2
#define SPECD_CLIENT_VERSION_PATCH 0
#define SPECD_CLIENT_VERSION_NUMBER 1002000

#ifndef SPECD_API
#if defined(__GNUC__)
#define SPECD_API __attribute__((visibility("default")))
#else
#define SPECD_API
#endif
#endif

/* True when struct *p (whose first field is struct_size) is large enough to hold field f.
 * (Spelled exactly as in specd/decoder.h, so including both headers is a valid redefinition.) */
#ifndef SPECD_HAS
#define SPECD_HAS(T, p, f) ((p)->struct_size >= offsetof(T, f) + sizeof(((T *)0)->f))
#endif

/* Finish reasons (specd_gen_result.finish_reason); the same values as in specd/decoder.h. Never
 * renumbered. */
#ifndef SPECD_FINISH_LENGTH
#define SPECD_FINISH_LENGTH 1  /* max_tokens reached */
#define SPECD_FINISH_STOP 2    /* a stop token or stop string */
#define SPECD_FINISH_DECODER 3 /* the decoder ended the sequence by its own rule */
#define SPECD_FINISH_CONTEXT 4 /* the context window is full */
#define SPECD_FINISH_CANCEL 5  /* the client cancelled or went away */
#define SPECD_FINISH_ERROR 6   /* failed */
#endif

/* The system service's socket. When neither specd_client_opts.socket_path nor $SPECD_SOCKET says,
 * a client that is not root first looks for its own user's daemon at $XDG_RUNTIME_DIR/specd/specd.sock
 * (where `specd serve` run by that user listens), then here. Since client 1.1 (before: only here). */
#define SPECD_DEFAULT_SOCKET "/run/specd/specd.sock"

/* specd_gen_params.flags */
/* Deliver tokens to on_token as they are accepted (the default); without it only on_done runs. */
#define SPECD_GEN_STREAM 0x1u
/* Keep a matched stop string at the end of the text; by default it is left out (as OpenAI's and
 * Ollama's APIs do), and text that could be its start is held back until that is known. A new
 * bit of 1.1 (no struct changed); a daemon that predates it keeps stop strings in the text. */
#define SPECD_GEN_KEEP_STOP 0x2u

/* --- version and error text -------------------------------------------------------------- */

/* The library's SPECD_CLIENT_VERSION_NUMBER, to compare with the header a program was built
 * against: specd_client_version_number() / 1000000 == SPECD_CLIENT_VERSION_NUMBER / 1000000.
 * Since 1.0. */
SPECD_API uint32_t specd_client_version_number(void);

/* A message ("kv cache full") and a name ("KV_FULL") for rc. An extended code gets its primary
 * code's text; a code this library does not know gets "unknown error -57". Static strings, never
 * NULL, safe from any thread. Since 1.0. */
SPECD_API const char *specd_strerror(int rc);
SPECD_API const char *specd_err_name(int rc);

/* The detail of a failed call. Caller-owned and optional (every function taking one accepts
 * NULL). On failure the library sets code and a NUL-terminated message; on success it leaves the
 * struct as it was. Initialise with specd_error_init. Since 1.0. */
typedef struct specd_error {
  uint32_t struct_size;
  int32_t code;       /* the SPECD_E_* code the call returned */
  char message[256];  /* for people, e.g. "daemon not running (no socket at /run/specd/specd.sock)" */
} specd_error;

static inline void specd_error_init(specd_error *e) {
  e->struct_size = (uint32_t)sizeof(*e);
  e->code = SPECD_OK;
  e->message[0] = '\0';
}

/* --- connection ---------------------------------------------------------------------------- */

/* Opaque. Made by specd_client_connect, ended by specd_client_close. */
typedef struct specd_client specd_client;

/* How to connect. Since 1.0. */
typedef struct specd_client_opts {
  uint32_t struct_size;
  int32_t timeout_ms;         /* bound on connect + handshake and on each wait of specd_client_status and
                                 specd_client_list_runs; 0: 10000; negative: no bound */
  const char *socket_path;    /* NULL or "": $SPECD_SOCKET if set and non-empty, else the
                                 user's own daemon's socket if it exists, else SPECD_DEFAULT_SOCKET */
  const char *client_name;    /* for the daemon's log; NULL or "": "libspecd-client 1.0.0" */
  uint32_t max_frame_bytes;   /* largest frame accepted from the daemon; 0: 64 MiB */
} specd_client_opts;

/* Set o->struct_size to struct_size and every field that size covers to its default. Called by
 * the inline specd_client_opts_init with the caller's sizeof, so the library never writes past a
 * struct compiled against an older header. Since 1.0. */
SPECD_API void specd_client_opts_init_sized(specd_client_opts *o, size_t struct_size);
static inline void specd_client_opts_init(specd_client_opts *o) { specd_client_opts_init_sized(o, sizeof(*o)); }

/* Connect to the daemon's Unix socket and do the Hello/Welcome handshake; blocks up to
 * opts->timeout_ms. opts may be NULL (all defaults); it is borrowed for the call. On success sets
 * *out and returns SPECD_OK; on failure sets *out to NULL and returns:
 *   SPECD_E_IO        "daemon not running (no socket at PATH)" (no socket file, or nobody listening),
 *                     a timeout, or the daemon closing the connection;
 *   SPECD_E_ACCESS    "permission denied on PATH" (the socket's mode and group), or the daemon's
 *                     [access] lists refuse this user (its Error's message);
 *   SPECD_E_VERSION   the daemon speaks another protocol version;
 *   SPECD_E_PROTOCOL  the daemon's reply was not a valid Welcome;
 *   SPECD_E_INVALID_ARG  out is NULL, opts->struct_size is 0, or the path is too long for a socket;
 *   SPECD_E_NOMEM; or another code the daemon sent in an Error reply, e.g. SPECD_E_LIMIT (too many
 *   connections), also when the daemon closed the connection before the Hello could be sent.
 * The message goes to *err when err is not NULL. Since 1.0. */
SPECD_API int specd_client_connect(const specd_client_opts *opts, specd_client **out, specd_error *err);

/* Close the connection and free c; NULL is ignored. Every outstanding request first gets its
 * on_done with SPECD_E_CANCELED ("the client was closed"), on this thread, before this returns;
 * the daemon cancels them when the connection closes. Must not be called from inside a callback
 * (doing so defers the close until the callback's poll returns, after which c is gone). Since 1.0. */
SPECD_API void specd_client_close(specd_client *c);

/* A file descriptor that is readable whenever specd_client_poll has work (a frame from the
 * daemon, a cancel from another thread, or output that can now be written). Owned by c, valid
 * until specd_client_close; only wait on it, never read, write or close it. -1 if c is NULL.
 * Since 1.0. */
SPECD_API int specd_client_fd(const specd_client *c);

/* Do the client's I/O: wait up to timeout_ms (0: don't wait; negative: until something happens)
 * for the daemon, then read and dispatch every complete frame, send queued requests and cancels.
 * Callbacks run here, on this thread. Returns the number of callbacks run (0 on timeout or when a
 * signal interrupted the wait), or:
 *   SPECD_E_IO        the connection is lost (the daemon closed it or a read/write failed);
 *   SPECD_E_PROTOCOL  the daemon sent a frame that is oversize or fails verification, or a message
 *                     other than Error outside any request (request 0); the client closes the
 *                     connection (frames for a request the client no longer has are dropped);
 *   the code of an Error the daemon sent for the whole connection (request 0), e.g. SPECD_E_LIMIT;
 *   SPECD_E_NOMEM / SPECD_E_INTERNAL  the library failed while handling the daemon's frames; it
 *                     closes the connection;
 *   SPECD_E_INVALID_ARG  c is NULL, or called from inside a callback.
 * Except for SPECD_E_INVALID_ARG, every outstanding request has had its on_done (with that code)
 * before this returns, and every later call returns the same code at once; close the client.
 * Since 1.0. */
SPECD_API int specd_client_poll(specd_client *c, int32_t timeout_ms);

/* --- generation ---------------------------------------------------------------------------- */

/* Opaque. One generation request: made by specd_generate, valid until its on_done returns. */
typedef struct specd_gen specd_gen;

/* What to generate. Pointers are borrowed for the specd_generate call (the request is encoded
 * before it returns). Since 1.0. */
typedef struct specd_gen_params {
  uint32_t struct_size;
  int32_t max_tokens;              /* tokens to generate at most; default 128 */
  const char *model;               /* a configured model name; NULL or "": the daemon's default model */
  const char *prompt_text;         /* UTF-8, tokenized by the daemon (with BOS); ignored when n_prompt_ids > 0 */
  const int32_t *prompt_ids;       /* the prompt as token ids (include BOS yourself) */
  size_t n_prompt_ids;
  float temperature;               /* <= 0: greedy (default 0) */
  int32_t top_k;                   /* 0: off (default) */
  float top_p;                     /* 1: off (default) */
  float min_p;                     /* 0: off (default) */
  uint64_t seed;                   /* the sampling RNG's seed; default 0 */
  const char *const *stop;         /* n_stop NUL-terminated UTF-8 stop strings; default none */
  size_t n_stop;
  const char *decoder;             /* a decoder name; NULL or "": "ar" */
  const char *decoder_options_json; /* NULL or a JSON object of the decoder's options, e.g. {"k":"4"} */
  uint32_t flags;                  /* SPECD_GEN_* bits; default SPECD_GEN_STREAM */
  /* --- since 1.2 (the library reads them when struct_size covers them) --- */
  const char *const *message_roles;    /* n_messages roles: "system", "user", "assistant" */
  const char *const *message_contents; /* n_messages UTF-8 texts, in order with the roles */
  size_t n_messages;               /* > 0: a conversation instead of a prompt (prompt_text and prompt_ids
                                    * must then be unset): the daemon renders it with the model's chat
                                    * template and the generation prompt, or, for a model without one,
                                    * sends the contents as plain text (an assistant turn follows the
                                    * text before it, any other starts a line); default 0 */
} specd_gen_params;

/* As specd_client_opts_init_sized, for specd_gen_params. Since 1.0. */
SPECD_API void specd_gen_params_init_sized(specd_gen_params *p, size_t struct_size);
static inline void specd_gen_params_init(specd_gen_params *p) { specd_gen_params_init_sized(p, sizeof(*p)); }

/* Tokens accepted in one decoding step. Filled by the library; valid only during on_token. Since 1.0. */
typedef struct specd_token_event {
  uint32_t struct_size;
  uint32_t step;          /* forwards run so far for this request */
  const int32_t *ids;     /* n_ids token ids, in order */
  size_t n_ids;
  const char *text;       /* their text, UTF-8 complete (a split character waits for the next event), NUL-terminated */
  size_t text_len;
} specd_token_event;

/* The outcome of a generation. Filled by the library. In on_done it is valid only during the
 * callback; from specd_generate_sync it is owned by the caller until specd_gen_result_free.
 * Every pointer points into the result and is never NULL. Since 1.0. */
typedef struct specd_gen_result {
  uint32_t struct_size;
  int32_t finish_reason;           /* SPECD_FINISH_*; 0 for a reason this library does not know */
  const char *finish_reason_name;  /* as the daemon sent it: "length", "stop", "decoder", "context", "cancel", ... */
  const int32_t *token_ids;        /* every generated id (also when streamed) */
  size_t n_tokens;
  const char *text;                /* their text, NUL-terminated */
  size_t text_len;
  int32_t prompt_tokens;
  int32_t generated_tokens;
  int32_t forwards;                /* forward passes run for this request */
  double tokens_per_forward;       /* generated tokens per decode forward */
  double ttft_ms;                  /* time to first token */
  double decode_tok_s;             /* generated tokens per second after the first */
  int64_t run_id;                  /* the request's row in the daemon's run log */
  const int32_t *accepted_hist;    /* accepted_hist[n]: decode steps that emitted n tokens */
  size_t n_accepted_hist;
} specd_gen_result;

/* Called for each step's tokens when the request streams (SPECD_GEN_STREAM), in order, inside
 * specd_client_poll (or another call that waits) on the caller's thread; ev is valid only during
 * the call. May call specd_gen_cancel and specd_generate; must not call specd_client_close,
 * specd_client_poll or the blocking calls. */
typedef void (*specd_gen_token_cb)(specd_gen *g, const specd_token_event *ev, void *user);

/* Called exactly once per request that specd_generate started, as its last callback, on the
 * caller's thread. rc is SPECD_OK when the daemon finished the request (result then holds the
 * output); SPECD_E_CANCELED when the daemon ended it as cancelled, after specd_gen_cancel or on its
 * own (e.g. at shutdown; result holds the partial output), or after specd_client_close (result
 * NULL); the daemon's error code (e.g. SPECD_E_UNKNOWN_DECODER, result NULL); the code that ended
 * the connection, as specd_client_poll returns it (e.g. SPECD_E_IO, SPECD_E_PROTOCOL; result NULL);
 * or SPECD_E_NOMEM when the library could not copy the result (result NULL). message is
 * never NULL ("" on success) and, like result, valid only during the call. g stays valid until
 * this returns; free user here. Same re-entrancy rules as specd_gen_token_cb. */
typedef void (*specd_gen_done_cb)(specd_gen *g, int rc, const char *message, const specd_gen_result *result,
                                  void *user);

/* Start a generation: encode params and queue it (sent now if the socket takes it, else by the
 * next specd_client_poll). on_done is required, on_token may be NULL; user is passed to both and
 * never read. On SPECD_OK sets *out (when out is not NULL) to the request, valid until on_done
 * returns, and on_done will run exactly once. On failure no callback runs, *out is set to NULL,
 * and it returns SPECD_E_INVALID_ARG (NULL c/params/on_done, struct_size 0, NULL prompt_ids or stop
 * with a non-zero count, a NULL stop string, NULL message_roles or message_contents with n_messages > 0 or a NULL
 * role or content, or called while the client closes), SPECD_E_LIMIT (the
 * request is larger than the daemon's frame limit), the code that ended the connection when it is
 * already lost (as specd_client_poll returned it, e.g. SPECD_E_IO; also a send failure of an
 * earlier specd_generate that no poll has reported yet), or SPECD_E_NOMEM, with the message in *err
 * when err is not NULL. Since 1.0. */
SPECD_API int specd_generate(specd_client *c, const specd_gen_params *params, specd_gen_token_cb on_token,
                             specd_gen_done_cb on_done, void *user, specd_gen **out, specd_error *err);

/* Ask the daemon to stop generation g. Returns SPECD_OK (the cancel is sent by the client's next
 * poll) or SPECD_E_INVALID_ARG if g is NULL; never blocks. Safe from any thread, including inside
 * g's callbacks, as long as it happens before g's on_done returns (after that g is gone: a thread
 * racing on_done must synchronise with it). on_done still runs exactly once afterwards, with
 * SPECD_E_CANCELED unless g finished first. Calling it again is harmless. Since 1.0. */
SPECD_API int specd_gen_cancel(specd_gen *g);

/* Generate and wait: specd_generate with no on_token, then poll until the request is done (no
 * time bound; other requests' callbacks run meanwhile). Returns what on_done would get: on SPECD_OK
 * sets *out to a result owned by the caller (free with specd_gen_result_free); otherwise sets
 * *out to NULL, returns the code (also SPECD_E_CANCELED should the daemon cancel it) with the
 * message in *err, or SPECD_E_INVALID_ARG when c or out is NULL or called from inside a callback.
 * The daemon sends no TokenEvents for it: the request goes out without SPECD_GEN_STREAM. Since 1.0. */
SPECD_API int specd_generate_sync(specd_client *c, const specd_gen_params *params, specd_gen_result **out,
                                  specd_error *err);

/* Free a result from specd_generate_sync; NULL is ignored. Never pass on_done's result. Since 1.0. */
SPECD_API void specd_gen_result_free(specd_gen_result *r);

/* --- status -------------------------------------------------------------------------------- */

/* How much of a model's tensors one weight type holds. Filled by the library; owned by its
 * specd_status. Since 1.2. */
typedef struct specd_status_weight_type {
  uint32_t struct_size;
  const char *type;     /* ggml's name: "F32", "Q4_K", ... */
  uint64_t parameters;  /* elements stored in this type */
  uint64_t bytes;       /* tensor bytes stored in this type */
} specd_status_weight_type;

/* specd_status_model.flags: the model has a chat template (tokenizer.chat_template), so a
 * conversation is rendered with it; without the bit it is sent as plain text. Since 1.2. */
#define SPECD_MODEL_CHAT_TEMPLATE 1u
/* specd_status_model.flags: the daemon's default model (the one a request naming none runs on). Since 1.2. */
#define SPECD_MODEL_DEFAULT 2u

/* A loaded model. Filled by the library; owned by its specd_status. Since 1.0. */
typedef struct specd_status_model {
  uint32_t struct_size;
  int32_t vocab;
  const char *name;
  const char *path;
  int32_t ctx_len;
  uint64_t weight_bytes;
  /* --- since 1.1 (check SPECD_HAS) --- */
  const char *device;            /* where it runs: "cpu", "cuda:0"; "" when the daemon does not say */
  uint64_t device_memory_used;   /* bytes its backend holds: weights, KV cache, scratch, staging, plugin buffers */
  uint64_t device_memory_total;  /* the device pool's size; 0 on the CPU (host memory, no pool) */
  /* --- since 1.2 (check SPECD_HAS; zero and "" from an older daemon) --- */
  const char *architecture;      /* general.architecture: "llama", "qwen2", ... */
  uint64_t parameters;           /* elements of every tensor in the file */
  uint64_t file_bytes;           /* the GGUF file's size */
  const specd_status_weight_type *const *weight_types;  /* n_weight_types, largest share of bytes first */
  size_t n_weight_types;
  uint32_t flags;                /* SPECD_MODEL_* bits */
  /* Its own KV cache (its share of the daemon's limits.kv_bytes), in blocks of the status's
   * kv_bytes_per_block: all of them, those no sequence holds, and those promised to admitted
   * requests (prompt + max_tokens each, filled or not yet). 0 from a daemon that does not say. */
  int32_t kv_blocks_total;
  int32_t kv_blocks_free;
  int32_t kv_blocks_reserved;
} specd_status_model;

/* A decoder plugin the daemon loaded. Filled by the library; owned by its specd_status. Since 1.0. */
typedef struct specd_status_decoder {
  uint32_t struct_size;
  const char *name;
  const char *version;
  const char *description;
  const char *path;
  /* --- since 1.2 (check SPECD_HAS) --- */
  /* Its options (default, range, meaning), lossless or lossy and the files it needs, as the JSON
   * object `specd decoders --json` prints for it; "" from an older daemon. */
  const char *details_json;
} specd_status_decoder;

/* The daemon's state. Filled by the library; owned by the caller until specd_status_free. Strings
 * are never NULL. Arrays hold pointers (not structs) so the element structs can grow. Since 1.0. */
typedef struct specd_status {
  uint32_t struct_size;
  int32_t active_requests;
  const char *daemon_version;
  double uptime_s;
  const specd_status_model *const *models;
  size_t n_models;
  const specd_status_decoder *const *decoders;
  size_t n_decoders;
  int32_t queued_requests;
  int32_t connections;
  int32_t kv_blocks_total;
  int32_t kv_blocks_free;
  uint64_t kv_bytes_per_block;
  /* --- since 1.2 (check SPECD_HAS; 0 from an older daemon) --- */
  int32_t kv_blocks_reserved;    /* the models' kv_blocks_reserved together */
} specd_status;

/* Ask the daemon for its status and wait for the reply (up to the client's timeout_ms; other
 * requests' callbacks run meanwhile). On SPECD_OK sets *out; otherwise sets *out to NULL and
 * returns SPECD_E_IO (lost connection or timeout), SPECD_E_PROTOCOL, the daemon's error code, or
 * SPECD_E_INVALID_ARG (NULL c or out, or called from inside a callback), with the message in *err.
 * Since 1.0. */
SPECD_API int specd_client_status(specd_client *c, specd_status **out, specd_error *err);

/* Free a status; NULL is ignored. Since 1.0. */
SPECD_API void specd_status_free(specd_status *s);

/* --- run log ------------------------------------------------------------------------------- */

/* Which runs to list. Since 1.0. */
typedef struct specd_runs_query {
  uint32_t struct_size;
  int32_t last;             /* newest first, at most this many; default 20 */
  const char *decoder;      /* NULL or "": any */
  const char *model;        /* NULL or "": any */
  int64_t since_unix_ms;    /* only runs started at or after; default 0 */
} specd_runs_query;

/* As specd_client_opts_init_sized, for specd_runs_query. Since 1.0. */
SPECD_API void specd_runs_query_init_sized(specd_runs_query *q, size_t struct_size);
static inline void specd_runs_query_init(specd_runs_query *q) { specd_runs_query_init_sized(q, sizeof(*q)); }

/* One row of the daemon's run log. Filled by the library; owned by its specd_runs. Strings are
 * never NULL. Since 1.0. */
typedef struct specd_run {
  uint32_t struct_size;
  int32_t peer_uid;
  int64_t id;
  int64_t started_unix_ms;
  int64_t finished_unix_ms;
  int32_t peer_pid;
  int32_t prompt_tokens;
  const char *model;
  const char *decoder;
  const char *decoder_options;  /* JSON object */
  int32_t generated_tokens;
  int32_t forwards;
  const char *accepted_hist;    /* JSON array */
  double ttft_ms;
  double decode_tok_s;
  const char *finish_reason;
  const char *error;            /* "NAME: message" when finish_reason is "error", else "" */
  /* --- since 1.2 (check SPECD_HAS) --- */
  const char *auto_settings;    /* JSON object: steps per setting an `auto` decoder chose, e.g.
                                   {"k=4":12,"plain":3}; "{}" when none, "" from an older daemon */
  const char *via;              /* how the request came in: "socket" or "http"; "" from an older daemon */
} specd_run;

/* A list of runs, newest first. Owned by the caller until specd_runs_free. Since 1.0. */
typedef struct specd_runs {
  uint32_t struct_size;
  const specd_run *const *runs;
  size_t n_runs;
  uint64_t dropped_log_entries; /* entries the daemon's run log could not write */
} specd_runs;

/* Query the daemon's run log and wait for the reply, as specd_client_status. q may be NULL (the
 * defaults); it is borrowed for the call. Since 1.0. */
SPECD_API int specd_client_list_runs(specd_client *c, const specd_runs_query *q, specd_runs **out, specd_error *err);

/* Free a list of runs; NULL is ignored. Since 1.0. */
SPECD_API void specd_runs_free(specd_runs *r);

#ifdef __cplusplus
}
#endif

#endif /* SPECD_CLIENT_H */
