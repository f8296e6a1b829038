// Tensor look-up and device ops offered to decoders (ABI "model tensors and device ops"), run on the
// model's backend (the runtime's Forward).
#pragma once

#include <specd/decoder.h>

namespace specd::daemon::tensor_ops {

int tensor(specd_host* h, const char* name, specd_tensor* out);
int buf_create(specd_host* h, size_t n, specd_buf** out);
void buf_destroy(specd_host* h, specd_buf* b);
// Free the buffers h's decoder created and did not destroy, with one warning line naming the decoder.
void free_forgotten(specd_host* h);
int buf_write(specd_host* h, specd_buf* b, size_t off, const float* src, size_t n);
int buf_read(specd_host* h, const specd_buf* b, size_t off, float* dst, size_t n);
int gemm(specd_host* h, const specd_tensor* w, const specd_tensor* bias, const specd_buf* x, int32_t m, specd_buf* y);
int embed(specd_host* h, const specd_tensor* table, const int32_t* ids, int32_t n, specd_buf* y);
int silu(specd_host* h, specd_buf* x, size_t n);
int add(specd_host* h, const specd_buf* a, const specd_buf* b, specd_buf* y, size_t n);
int log_softmax(specd_host* h, specd_buf* x, int32_t rows, int32_t cols);
int topk(specd_host* h, const specd_buf* x, int32_t rows, int32_t cols, int32_t k, int32_t* ids, float* vals);

}  // namespace specd::daemon::tensor_ops
