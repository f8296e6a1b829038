/* specd decoder plugin ABI, version 1.3 (1.1 added metadata, side files and refuse(); 1.2 the cost
 * model and the record of settings a decoder chose; 1.3 a decoder's memory across requests).
 *
 * A decoder is a shared object that exports one symbol, specd_decoder_entry(), returning a const
 * descriptor of function pointers. The daemon (the "host") calls those functions to decode
 * sequences; the decoder calls back into the host through the specd_host_api table it receives in
 * create(). A plugin links to nothing from specd: this header (and specd/error.h) is all it needs.
 *
 * The step protocol. For every active sequence the host calls plan(), in which the decoder adds
 * the rows it wants run (tokens, positions, which other rows of this step each may see, whether it
 * wants logits and/or the final hidden state). The host merges the rows of every sequence into ONE
 * forward pass, then calls accept() per sequence, in which the decoder reads the outputs, commits
 * the K/V of the rows it keeps (appended to the sequence's cache, in order, at consecutive
 * positions), and emits tokens to the client. Rows not committed are dropped before the next step.
 * Every row always sees all committed K/V of its sequence, and itself. See abi/README.md for the
 * call sequences of ar, ngram, ReDrafter, TiDAR and LoPA written against this header.
 *
 * Threads. Every decoder function is called from the host's engine thread only, so decoders need
 * not be thread-safe. A decoder must not call the host from another thread, must not block, and
 * must not keep pointers the host handed it (batches, outputs, logits) past the call that gave them.
 *
 * Ownership. Input pointers are borrowed for the call. Memory a decoder keeps is its own; it may
 * allocate with api->mem_alloc/api->mem_free or its own allocator, but never frees host memory nor
 * hands the host memory to free. mem_alloc blocks and buf_create buffers count against one limit on
 * decoder memory, shared by every decoder instance and sequence on the same model (see mem_alloc);
 * memory from the decoder's own allocator is not counted. specd_host_api and specd_model_info stay
 * valid until destroy() returns.
 *
 * Device ops. A specd_buf is memory of the backend the model runs on (device memory when the model
 * runs on a GPU). buf_write, op_gemm, op_embed, op_silu, op_add and op_log_softmax are queued on that
 * backend in call order and may complete after they return: their SPECD_OK says the arguments were
 * valid and the work was queued, and the host arrays they read (buf_write's src, op_embed's ids) are
 * copied before they return. buf_read and op_topk wait until everything queued before them has
 * finished, then fill the caller's arrays; a device error in that queued work is returned there, as
 * its SPECD_E_* code (unless the host's own wait in the step's forward met it first, which fails that
 * step's sequences). Buffers a decoder does not buf_destroy are freed by the host when the instance's
 * specd_host ends, after destroy(), with one warning line in the daemon's log naming the decoder;
 * their bytes then leave the decoder-memory account. mem_alloc blocks are not tracked that way: a
 * block never given to mem_free stays allocated and counted.
 *
 * Errors. Functions return SPECD_OK (0) or a negative SPECD_E_* code; a function documented to
 * return a count or an index returns it as a non-negative value. A decoder that returns an error
 * from begin/plan/accept fails only that sequence; the host also fails a sequence (with
 * SPECD_E_PLUGIN and a message naming the violation) when the decoder adds bad rows, commits out of
 * order, emits out-of-range tokens or makes no progress. C++ decoders must catch every exception
 * at each entry point.
 *
 * Versioning. SPECD_DECODER_ABI_MAJOR changes only on incompatible changes; structs and the host
 * table only grow at the end. Every struct crossing the boundary starts with struct_size, set by
 * whoever fills it; a reader uses a field only when SPECD_HAS() says the struct covers it. */
#ifndef SPECD_DECODER_H
#define SPECD_DECODER_H

#include <stddef.h>
#include <stdint.h>

#include "specd/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SPECD_DECODER_ABI_MAJOR 1
#define SPECD_DECODER_ABI_MINOR 3

#if defined(__GNUC__)
#define SPECD_EXPORT __attribute__((visibility("default")))
#define SPECD_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define SPECD_EXPORT
#define SPECD_PRINTF(fmt, args)
#endif

/* True when struct *p (whose first field is struct_size) is large enough to hold field f. */
#define SPECD_HAS(T, p, f) ((p)->struct_size >= offsetof(T, f) + sizeof(((T *)0)->f))

/* Opaque handles. specd_host: one per decoder instance, made before create(), ended after
 * destroy(). specd_seq: one per sequence, valid from begin() until end() returns. specd_batch: the
 * rows of one sequence in one step, valid during plan(). specd_outputs: the results of that step's
 * forward for one sequence, valid during accept(). specd_buf: a float buffer in the memory of the
 * backend that runs the model, made by buf_create and ended by buf_destroy or, failing that, by the
 * end of its specd_host. */
typedef struct specd_host specd_host;
typedef struct specd_seq specd_seq;
typedef struct specd_batch specd_batch;
typedef struct specd_outputs specd_outputs;
typedef struct specd_buf specd_buf;

/* Row flags (row_add). */
#define SPECD_ROW_LOGITS 0x1u /* return logits [vocab] for this row */
#define SPECD_ROW_HIDDEN 0x2u /* return the final-norm hidden state [dim] (the LM head's input) */

/* Finish reasons (finish(), and what clients see). Never renumbered. */
#define SPECD_FINISH_LENGTH 1  /* max_tokens reached */
#define SPECD_FINISH_STOP 2    /* a stop token or stop string */
#define SPECD_FINISH_DECODER 3 /* the decoder ended the sequence by its own rule */
#define SPECD_FINISH_CONTEXT 4 /* the context window is full */
#define SPECD_FINISH_CANCEL 5  /* the client cancelled or went away */
#define SPECD_FINISH_ERROR 6   /* failed; the error code and message travel with it */

/* Log levels (log()). */
#define SPECD_LOG_DEBUG 0
#define SPECD_LOG_INFO 1
#define SPECD_LOG_WARN 2
#define SPECD_LOG_ERROR 3

/* What a decoder may read about the model. Filled by the host. Since 1.0. */
typedef struct specd_model_info {
  uint32_t struct_size;
  int32_t vocab;       /* rows of the LM head; token ids are in [0, vocab) */
  int32_t dim;         /* hidden size (length of SPECD_ROW_HIDDEN rows) */
  int32_t n_layers;
  int32_t ctx_len;     /* positions available to a sequence: the model's context, or fewer when
                        * the host's KV cache holds fewer */
  int32_t bos_id;
  int32_t eos_id;
  int32_t mask_id;     /* the MASK token of diffusion / TiDAR models, -1 if none */
  int32_t logit_shift; /* 1 when row i's logits predict token i+1 in diffusion mode (AR-initialised dLLMs) */
  const char *arch;    /* general.architecture, e.g. "llama" */
  const char *path;    /* the model file */
  const char *digest;  /* hex digest identifying the weights (pairs drafters with their target) */
  int32_t max_rows;    /* rows one sequence may add in one step (row_add fails past it) */
} specd_model_info;

/* The request's sampling parameters. temperature <= 0 means greedy. Since 1.0. */
typedef struct specd_sampling {
  uint32_t struct_size;
  float temperature;
  int32_t top_k; /* 0: off */
  float top_p;   /* 1: off */
  float min_p;   /* 0: off */
  uint64_t seed;
} specd_sampling;

/* A named tensor of the model file (e.g. drafter weights). ne[0] is the innermost dimension; a
 * [rows][cols] matrix has ne = {cols, rows}. handle is opaque: pass the struct to the op_* calls.
 * Since 1.0. */
typedef struct specd_tensor {
  uint32_t struct_size;
  int32_t type;   /* GGUF type number: 0 F32, 1 F16, 8 Q8_0, 30 BF16 */
  int32_t n_dims;
  int64_t ne[4];
  const void *handle;
} specd_tensor;

/* The host's services. One const table per host ABI version; it only grows at the end. Unless
 * stated, a function returns SPECD_OK or a negative SPECD_E_* code and never blocks; buf_read and
 * op_topk wait for the device, and file_attach reads a file. "create only" / "plan only" / "accept
 * only" functions return SPECD_E_INVALID_ARG when called at another time (out_logits/out_hidden
 * return NULL; refuse returns its code). */
typedef struct specd_host_api {
  uint32_t struct_size;
  uint32_t abi_major, abi_minor;

  /* --- memory and logging (any time) --- */
  /* (Named mem_alloc/mem_free/log_msg, not alloc/free/log, so <tgmath.h> or a debug allocator's
   * macros cannot collide with them.) */
  /* Allocate n bytes (16-byte aligned). The block counts as n rounded up to a multiple of 16, plus
   * 16 bytes of header, against the decoder-memory limit of h's model (shared with buf_create's
   * buffers and with every other instance on that model) until mem_free; NULL when h is NULL, when
   * those bytes would pass the limit, or when the system has no memory. */
  void *(*mem_alloc)(specd_host *h, size_t n);
  /* Free memory from mem_alloc and give its bytes back to the account; h is not read (the block
   * records its account); NULL is ignored. */
  void (*mem_free)(specd_host *h, void *p);
  /* Write a line to the daemon's log, tagged with the decoder's name. SPECD_LOG_DEBUG lines are
   * shown only when the daemon runs with SPECD_LOG=debug. */
  void (*log_msg)(specd_host *h, int32_t level, const char *fmt, ...) SPECD_PRINTF(3, 4);

  /* --- options (create only) --- */
  /* Read option `key` of the request's decoder options as an integer in [lo, hi] (default def when
   * absent): a JSON integer, or a string holding exactly its digits (no blanks or '+'; "-" allowed);
   * SPECD_E_BAD_OPTION when present but not such an integer or outside [lo, hi]. Options a decoder
   * never reads during create() make the request fail with SPECD_E_BAD_OPTION ("unknown option"). */
  int (*opt_int)(specd_host *h, const char *key, int64_t def, int64_t lo, int64_t hi, int64_t *out);
  /* As opt_int for a number in [lo, hi]. */
  int (*opt_float)(specd_host *h, const char *key, double def, double lo, double hi, double *out);
  /* As opt_int for a string; *out is owned by the host and valid until create() returns. */
  int (*opt_string)(specd_host *h, const char *key, const char *def, const char **out);

  /* --- sequence state (any time between begin and end) --- */
  /* All tokens of the sequence: the prompt, then every emitted token. *tokens is valid until the
   * next emit(). Returns the count. */
  int32_t (*seq_tokens)(specd_seq *s, const int32_t **tokens);
  /* Number of prompt tokens (a prefix of seq_tokens). */
  int32_t (*seq_prompt_len)(specd_seq *s);
  /* Positions with committed K/V; the next committed row must have this position. */
  int32_t (*seq_kv_len)(specd_seq *s);
  /* How many more tokens emit() will take before max_tokens ends the sequence. */
  int32_t (*seq_remaining)(specd_seq *s);
  /* The request's sampling parameters; valid until end(). */
  const specd_sampling *(*seq_sampling)(specd_seq *s);
  /* A per-sequence pointer for the decoder's own state (NULL until set). */
  void (*seq_set_user)(specd_seq *s, void *user);
  void *(*seq_user)(specd_seq *s);

  /* --- rows (plan only) --- */
  /* Add a row to this step. It sees committed K/V and itself. Returns its index in this sequence's
   * step (0, 1, 2, ...) or SPECD_E_BAD_TOKEN / SPECD_E_CONTEXT / SPECD_E_LIMIT (too many rows). */
  int32_t (*row_add)(specd_batch *b, int32_t token, int32_t pos, uint32_t flags);
  /* Let row `row` see row `visible` (both from row_add in this step; visibility is not symmetric). */
  int (*row_see)(specd_batch *b, int32_t row, int32_t visible);
  /* Make row `row` see every row of this step before it (a causal chain); fine for row 0. */
  int (*row_see_all_before)(specd_batch *b, int32_t row);

  /* --- outputs (accept only; emit: see emit) --- */
  /* Logits [vocab] / hidden state [dim] of a row that asked for them; NULL otherwise. The
   * pointer is valid until accept() returns. */
  const float *(*out_logits)(const specd_outputs *o, int32_t row);
  const float *(*out_hidden)(const specd_outputs *o, int32_t row);
  /* Append the K/V of rows[0..n) (row indices of this step) to the sequence's cache, in order.
   * Row i's position must equal seq_kv_len() + i. May be called more than once per accept.
   * The host reserved room for the prompt + max_tokens positions when the request was admitted;
   * rows past that are not stored (they could only be read after max_tokens), and a sequence
   * whose commit was cut must end in this accept or it fails with SPECD_E_KV_FULL.
   * Errors: SPECD_E_PLUGIN (bad row or position), SPECD_E_KV_FULL, SPECD_E_CONTEXT. */
  int (*commit)(specd_seq *s, const specd_outputs *o, const int32_t *rows, int32_t n);
  /* Send tokens to the client. The host applies max_tokens, stop tokens and stop strings: it
   * returns how many of the n tokens it took (0..n) and, when one of them ended the sequence,
   * finishes it (seq_finished() then returns the reason). SPECD_E_BAD_TOKEN for an id outside
   * [0, vocab) or the MASK id (which also fails the sequence with SPECD_E_PLUGIN); nothing is taken
   * then. Meant for accept(), but the phase is not checked: a call from begin() or plan() is taken
   * the same way. */
  int32_t (*emit)(specd_seq *s, const int32_t *tokens, int32_t n);
  /* --- sequence control (plan or accept) --- */
  /* End the sequence with reason (e.g. SPECD_FINISH_DECODER; a reason outside SPECD_FINISH_LENGTH ..
   * SPECD_FINISH_CANCEL becomes SPECD_FINISH_DECODER); later calls for it are no-ops. */
  void (*finish)(specd_seq *s, int32_t reason);
  /* 0 while the sequence runs, else its SPECD_FINISH_* reason. */
  int32_t (*seq_finished)(specd_seq *s);
  /* Fail the sequence with code (a non-negative code becomes SPECD_E_PLUGIN) and a message for the
   * client, which the host prefixes with the decoder's name; returns the code, so a decoder can
   * `return api->fail(s, SPECD_E_INTERNAL, "...")`. Inside begin() it only records the message:
   * the request fails, with that message, if begin() then returns an error. */
  int (*fail)(specd_seq *s, int32_t code, const char *fmt, ...) SPECD_PRINTF(3, 4);

  /* --- sampling with the request's parameters and seeded RNG (any time) --- */
  /* Draw a token from logits [vocab] under the request's sampling parameters (argmax if greedy,
   * using no randomness); a non-greedy draw consumes exactly one uniform of the request's RNG, so
   * two decoders that sample the same logits in the same order produce the same stream. Never the
   * model's MASK id: its logit is left out (the law given "not MASK"). Logits holding NaN or +inf
   * (-inf is a masked token) fail the sequence with SPECD_E_PLUGIN; the call then returns
   * SPECD_E_INVALID_ARG, as it does for NULL arguments. */
  int32_t (*sample)(specd_seq *s, const float *logits);
  /* The filtered, renormalised distribution of logits (one-hot at the argmax if greedy) into
   * probs [vocab]; MASK, if the model has one, gets 0. Non-finite logits: as sample(). */
  int (*probs)(specd_seq *s, const float *logits, float *probs);
  /* A uniform double in [0, 1) from the request's RNG. */
  double (*uniform)(specd_seq *s);
  /* Index of the largest of x[0..n), lowest index on ties; -1 when x is NULL or n <= 0. */
  int32_t (*argmax)(const float *x, int32_t n);

  /* --- model tensors and device ops (any time) --- */
  /* Look up a tensor by name in the model file, then in the files attached with file_attach, in
   * attach order. SPECD_E_INVALID_ARG if absent. */
  int (*tensor)(specd_host *h, const char *name, specd_tensor *out);
  /* A backend buffer of n floats, zeroed (the zeroing is queued like an op), owned by this instance.
   * It counts as 4n bytes plus a small fixed overhead against the limit mem_alloc describes.
   * SPECD_E_NOMEM when it would pass that limit or the backend has no memory for it;
   * SPECD_E_INVALID_ARG when h or out is NULL. *out is NULL on failure. */
  int (*buf_create)(specd_host *h, size_t n, specd_buf **out);
  /* Free b (NULL is ignored) and give its bytes back to the account. */
  void (*buf_destroy)(specd_host *h, specd_buf *b);
  /* Copy n floats between host memory and buffer b at element offset off (buf_write queued, buf_read
   * waiting: see "Device ops" above). SPECD_E_INVALID_ARG out of range. */
  int (*buf_write)(specd_host *h, specd_buf *b, size_t off, const float *src, size_t n);
  int (*buf_read)(specd_host *h, const specd_buf *b, size_t off, float *dst, size_t n);
  /* y[m][N] = x[m][K] · wᵀ (+ bias[N] when bias is not NULL); w is [N][K]. */
  int (*op_gemm)(specd_host *h, const specd_tensor *w, const specd_tensor *bias, const specd_buf *x, int32_t m,
                 specd_buf *y);
  /* y[i][:] = table row ids[i], for i < n. SPECD_E_BAD_TOKEN when an id is not a row of table. */
  int (*op_embed)(specd_host *h, const specd_tensor *table, const int32_t *ids, int32_t n, specd_buf *y);
  /* x[i] = silu(x[i]) for i < n. */
  int (*op_silu)(specd_host *h, specd_buf *x, size_t n);
  /* y[i] = a[i] + b[i] for i < n (y may alias a or b). */
  int (*op_add)(specd_host *h, const specd_buf *a, const specd_buf *b, specd_buf *y, size_t n);
  /* Each of rows rows of cols floats becomes its log-softmax, in place. */
  int (*op_log_softmax)(specd_host *h, specd_buf *x, int32_t rows, int32_t cols);
  /* Per row, the k largest values (descending, lowest index first on ties) into host arrays
   * ids[rows][k] and vals[rows][k], filled when it returns (it waits: see "Device ops" above). */
  int (*op_topk)(specd_host *h, const specd_buf *x, int32_t rows, int32_t cols, int32_t k, int32_t *ids,
                 float *vals);

  /* --- since 1.1: metadata, side files, refusing a request (check SPECD_HAS before use) --- */
  /* Attach the GGUF file at path (e.g. a drafter's weights) to this instance (create only):
   * afterwards tensor() and meta_*() also look there, after the model file. The host reads each file
   * once into its own memory (a file changed later does not affect this instance) and shares it
   * between requests. SPECD_E_ACCESS when path is not in a directory the daemon allows side files
   * from (the same whether or not it exists), SPECD_E_IO when it cannot be read, SPECD_E_LIMIT when
   * it is larger than the daemon allows, SPECD_E_BAD_MODEL when it is not a valid GGUF file; the
   * reason, which names path and never the file's contents, is what the client is told if create()
   * then fails. */
  int (*file_attach)(specd_host *h, const char *path);
  /* Read metadata key of the model file, else of the attached files (first found). SPECD_E_INVALID_ARG
   * when absent or of another kind (integers of any width fit meta_int; meta_float also takes
   * integers). *out of meta_string is owned by the host and valid until destroy() returns. */
  int (*meta_int)(specd_host *h, const char *key, int64_t *out);
  int (*meta_float)(specd_host *h, const char *key, double *out);
  int (*meta_string)(specd_host *h, const char *key, const char **out);
  /* Record why create() refuses the request (create only: at other times it records nothing); returns
   * code (a non-negative code becomes SPECD_E_PLUGIN), so a decoder can
   * `return api->refuse(h, SPECD_E_BAD_MODEL, "...")`. The client gets the message prefixed with the
   * decoder's name. */
  int (*refuse)(specd_host *h, int32_t code, const char *fmt, ...) SPECD_PRINTF(3, 4);

  /* --- decoder ABI 1.2 --- */
  /* The host's cost model and the record of settings a decoder chose (check SPECD_HAS before use). */
  /* The expected time of a step in which this instance's sequence adds `rows` rows that all want
   * logits (the forward and the host's own per-step work), relative to a step of one such row (so
   * step_cost(h, 1) is 1; rows <= 0 give 0). The host measures it on its own backend and thread
   * count (a short calibration when the model is loaded, refined from the steps it runs), and counts
   * the rows other sequences added to the last step, so under in-flight batching it is the marginal
   * cost. Any time; never blocks. */
  double (*step_cost)(specd_host *h, int32_t rows);
  /* The time the decoder spent in this sequence's last plan() and accept() together (its drafter,
   * host ops and bookkeeping), in the same unit as step_cost: one step of one row. 0 before the first
   * step or while the host has timed no step. Any time between begin and end. */
  double (*seq_decoder_cost)(specd_seq *s);
  /* Record that this step ran with setting `label` (e.g. "k=4", "W=2,L=3", "plain"; at most 31
   * bytes are kept): the host counts steps per label and stores the histogram with the run. Any
   * time between begin and end; SPECD_E_INVALID_ARG when label is NULL or empty, SPECD_E_LIMIT past
   * 64 distinct labels in one sequence. */
  int (*seq_note_setting)(specd_seq *s, const char *label);

  /* --- decoder ABI 1.3 (check SPECD_HAS before use) --- */
  /* A block of `size` bytes the host keeps for this decoder on this model from one request to the
   * next while the daemon runs, for what earlier sequences taught the decoder (e.g. `auto`'s
   * acceptance statistics) to start later ones from. The host zeroes it when it is first asked for
   * and whenever it is asked for with another size, and never reads it. Returns the block, valid
   * until this instance is destroyed, or NULL when h is NULL, size is 0 or size is over
   * SPECD_DECODER_MEMORY_MAX. Any time between create and destroy. Every instance of this decoder
   * on this model gets the same block (all on the engine thread, so no locking); keep a layout
   * version in it, since a rebuilt decoder reloaded by a rescan finds what the old one left. */
  void *(*decoder_memory)(specd_host *h, size_t size);
} specd_host_api;

#define SPECD_DECODER_MEMORY_MAX 65536

/* --- decoder ABI 1.2: a descriptor describes its options, for `specd decoders` --- */
#define SPECD_OPTION_INT 1    /* read with opt_int */
#define SPECD_OPTION_FLOAT 2  /* read with opt_float */
#define SPECD_OPTION_STRING 3 /* read with opt_string */
/* One option a decoder's create() reads. Static storage in the plugin; all strings UTF-8 text for people
 * except key, which is exactly what create() passes to opt_*. Since ABI 1.2. */
typedef struct specd_option_desc {
  uint32_t struct_size; /* sizeof(specd_option_desc) as the plugin compiled it: the stride of the array */
  int32_t type;         /* SPECD_OPTION_* */
  const char *key;
  const char *def;      /* the default as written in a request ("8", "0.9", "exact"), or a phrase ("from the model") */
  const char *range;    /* "[1, 64]", "exact|reference"; NULL: any */
  const char *meaning;
} specd_option_desc;
/* specd_decoder.flags */
#define SPECD_DECODER_LOSSLESS 1u /* output equals ar's for the same sampling (greedy: the same tokens) */

/* A decoder's descriptor, returned by specd_decoder_entry. Required slots must be non-NULL. */
typedef struct specd_decoder {
  uint32_t struct_size;
  uint32_t abi_major;    /* SPECD_DECODER_ABI_MAJOR the plugin was built with */
  uint32_t abi_minor;
  uint32_t pointer_size; /* sizeof(void *), checked by the loader */
  const char *name;      /* unique, [a-z0-9_-]+, what requests name */
  const char *version;
  const char *description;

  /* Required. Make an instance for one request: read options with api->opt_*, look up tensors.
   * Sets *instance (may be NULL if the decoder keeps no state). Errors fail the request. */
  int (*create)(const specd_host_api *api, specd_host *h, const specd_model_info *model, const char *options_json,
                void **instance);
  /* Required. Free the instance. Called once for every create() that returned SPECD_OK, with the
   * instance it set (possibly NULL): after end() when a sequence began, or right away when the host
   * refuses the request after create() (e.g. an unknown option). Not called when create() fails. */
  void (*destroy)(void *instance);
  /* Required. A sequence starts: its prompt is seq_tokens(); nothing is committed yet. */
  int (*begin)(void *instance, specd_seq *s);
  /* Required. Add this step's rows (at least one, unless the decoder finishes the sequence). */
  int (*plan)(void *instance, specd_seq *s, specd_batch *b);
  /* Required. Read outputs, commit, emit. */
  int (*accept)(void *instance, specd_seq *s, const specd_outputs *o);
  /* Optional, may be NULL. The sequence ended (finished, failed or cancelled), also when its own
   * begin() returned an error. */
  void (*end)(void *instance, specd_seq *s);

  /* --- ABI 1.2 (read only when struct_size covers them; a 1.1 plugin lists "options not described") --- */
  const specd_option_desc *options; /* n_options entries (stride options->struct_size), or NULL */
  uint32_t n_options;
  uint32_t flags;                   /* SPECD_DECODER_LOSSLESS, else lossy */
  const char *needs;                /* files it needs beyond the model and how to make them, or NULL: none */
} specd_decoder;

/* Fill the descriptor's bookkeeping head: static const specd_decoder d = { SPECD_DECODER_HEAD, ... }; */
#define SPECD_DECODER_HEAD \
  sizeof(specd_decoder), SPECD_DECODER_ABI_MAJOR, SPECD_DECODER_ABI_MINOR, (uint32_t)sizeof(void *)

/* The one symbol a plugin exports. Given the host's ABI version, return the descriptor (static
 * storage, never freed) or NULL to decline (e.g. the host is older than the plugin needs). */
typedef const specd_decoder *(*specd_decoder_entry_fn)(uint32_t host_abi_major, uint32_t host_abi_minor);
SPECD_EXPORT const specd_decoder *specd_decoder_entry(uint32_t host_abi_major, uint32_t host_abi_minor);

#ifdef __cplusplus
}
#endif

#endif /* SPECD_DECODER_H */
