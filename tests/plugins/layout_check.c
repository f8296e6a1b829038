/* layout_check: freezes the decoder ABI 1.0 struct layouts (LP64) with _Static_assert; moving a field fails the build. */
#include <specd/decoder.h>

/* Only offsets and widths are frozen, never sizeof: appending a field at the end must still pass
 * (STYLE.md part 4). The numbers are those of the 1.0 release on LP64 targets (x86-64, aarch64). */
#if defined(__LP64__) || defined(_LP64)

#define AT(T, f, off) _Static_assert(offsetof(T, f) == (off), "decoder ABI 1.0: " #T "." #f " moved")
#define WIDTH(T, f, n) _Static_assert(sizeof(((T *)0)->f) == (n), "decoder ABI 1.0: " #T "." #f " resized")
#define FIELD(T, f, off, n) \
  AT(T, f, off);            \
  WIDTH(T, f, n)

_Static_assert(sizeof(void *) == 8, "LP64 layouts below");

FIELD(specd_model_info, struct_size, 0, 4);
FIELD(specd_model_info, vocab, 4, 4);
FIELD(specd_model_info, dim, 8, 4);
FIELD(specd_model_info, n_layers, 12, 4);
FIELD(specd_model_info, ctx_len, 16, 4);
FIELD(specd_model_info, bos_id, 20, 4);
FIELD(specd_model_info, eos_id, 24, 4);
FIELD(specd_model_info, mask_id, 28, 4);
FIELD(specd_model_info, logit_shift, 32, 4);
FIELD(specd_model_info, arch, 40, 8);
FIELD(specd_model_info, path, 48, 8);
FIELD(specd_model_info, digest, 56, 8);
FIELD(specd_model_info, max_rows, 64, 4);

FIELD(specd_sampling, struct_size, 0, 4);
FIELD(specd_sampling, temperature, 4, 4);
FIELD(specd_sampling, top_k, 8, 4);
FIELD(specd_sampling, top_p, 12, 4);
FIELD(specd_sampling, min_p, 16, 4);
FIELD(specd_sampling, seed, 24, 8);

FIELD(specd_tensor, struct_size, 0, 4);
FIELD(specd_tensor, type, 4, 4);
FIELD(specd_tensor, n_dims, 8, 4);
FIELD(specd_tensor, ne, 16, 32);
FIELD(specd_tensor, handle, 48, 8);

FIELD(specd_decoder, struct_size, 0, 4);
FIELD(specd_decoder, abi_major, 4, 4);
FIELD(specd_decoder, abi_minor, 8, 4);
FIELD(specd_decoder, pointer_size, 12, 4);
FIELD(specd_decoder, name, 16, 8);
FIELD(specd_decoder, version, 24, 8);
FIELD(specd_decoder, description, 32, 8);
FIELD(specd_decoder, create, 40, 8);
FIELD(specd_decoder, destroy, 48, 8);
FIELD(specd_decoder, begin, 56, 8);
FIELD(specd_decoder, plan, 64, 8);
FIELD(specd_decoder, accept, 72, 8);
FIELD(specd_decoder, end, 80, 8);

FIELD(specd_host_api, struct_size, 0, 4);
FIELD(specd_host_api, abi_major, 4, 4);
FIELD(specd_host_api, abi_minor, 8, 4);
/* memory and logging */
FIELD(specd_host_api, mem_alloc, 16, 8);
FIELD(specd_host_api, mem_free, 24, 8);
FIELD(specd_host_api, log_msg, 32, 8);
/* options */
FIELD(specd_host_api, opt_int, 40, 8);
FIELD(specd_host_api, opt_float, 48, 8);
FIELD(specd_host_api, opt_string, 56, 8);
/* sequence state */
FIELD(specd_host_api, seq_tokens, 64, 8);
FIELD(specd_host_api, seq_prompt_len, 72, 8);
FIELD(specd_host_api, seq_kv_len, 80, 8);
FIELD(specd_host_api, seq_remaining, 88, 8);
FIELD(specd_host_api, seq_sampling, 96, 8);
FIELD(specd_host_api, seq_set_user, 104, 8);
FIELD(specd_host_api, seq_user, 112, 8);
/* rows */
FIELD(specd_host_api, row_add, 120, 8);
FIELD(specd_host_api, row_see, 128, 8);
FIELD(specd_host_api, row_see_all_before, 136, 8);
/* outputs */
FIELD(specd_host_api, out_logits, 144, 8);
FIELD(specd_host_api, out_hidden, 152, 8);
FIELD(specd_host_api, commit, 160, 8);
FIELD(specd_host_api, emit, 168, 8);
FIELD(specd_host_api, finish, 176, 8);
FIELD(specd_host_api, seq_finished, 184, 8);
FIELD(specd_host_api, fail, 192, 8);
/* sampling */
FIELD(specd_host_api, sample, 200, 8);
FIELD(specd_host_api, probs, 208, 8);
FIELD(specd_host_api, uniform, 216, 8);
FIELD(specd_host_api, argmax, 224, 8);
/* model tensors and device ops */
FIELD(specd_host_api, tensor, 232, 8);
FIELD(specd_host_api, buf_create, 240, 8);
FIELD(specd_host_api, buf_destroy, 248, 8);
FIELD(specd_host_api, buf_write, 256, 8);
FIELD(specd_host_api, buf_read, 264, 8);
FIELD(specd_host_api, op_gemm, 272, 8);
FIELD(specd_host_api, op_embed, 280, 8);
FIELD(specd_host_api, op_silu, 288, 8);
FIELD(specd_host_api, op_add, 296, 8);
FIELD(specd_host_api, op_log_softmax, 304, 8);
FIELD(specd_host_api, op_topk, 312, 8);
FIELD(specd_host_api, file_attach, 320, 8); /* 1.1 */
FIELD(specd_host_api, meta_int, 328, 8);
FIELD(specd_host_api, meta_float, 336, 8);
FIELD(specd_host_api, meta_string, 344, 8);
FIELD(specd_host_api, refuse, 352, 8);
FIELD(specd_host_api, step_cost, 360, 8); /* 1.2 */
FIELD(specd_host_api, seq_decoder_cost, 368, 8);
FIELD(specd_host_api, seq_note_setting, 376, 8);

/* The 1.0 sizes are lower bounds: later minors may only grow them. */
_Static_assert(sizeof(specd_decoder) >= 88, "decoder ABI 1.0: specd_decoder shrank");
_Static_assert(sizeof(specd_host_api) >= 320, "decoder ABI 1.0: specd_host_api shrank");

#endif

/* A translation unit must declare something (-pedantic); this is also what the static library exports. */
int specd_layout_check_lp64(void);
int specd_layout_check_lp64(void) {
#if defined(__LP64__) || defined(_LP64)
  return 1;
#else
  return 0;
#endif
}
