// CPU implementations of the decoder ABI's tensor ops: buffers are host vectors, GEMMs use the kernels.
#include "daemon/host_tensor_ops.h"

#include "daemon/decode_runtime.h"
#include "daemon/sequence_state.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <vector>

struct specd_buf {
  std::vector<float> data;
  specd::daemon::DecodeRuntime* rt = nullptr;  // whose plugin-memory account holds `bytes`
  size_t bytes = 0;
};

namespace specd::daemon::tensor_ops {
namespace {

const engine::GgufTensorInfo* info(const specd_tensor* t) {
  return t ? static_cast<const engine::GgufTensorInfo*>(t->handle) : nullptr;
}

bool fits(const specd_buf* b, size_t off, size_t n) { return b && off <= b->data.size() && n <= b->data.size() - off; }

kernels::WeightView view(const engine::GgufTensorInfo& t) {
  const int64_t rows = t.n_dims >= 2 ? t.ne[1] : 1;
  return {t.type, t.data, rows, t.ne[0], specd::ggml_row_bytes(t.type, t.ne[0])};
}

}  // namespace

int tensor(specd_host* h, const char* name, specd_tensor* out) {
  if (!h || !name || !out) return SPECD_E_INVALID_ARG;
  const engine::GgufTensorInfo* t = h->rt->model().file().tensor(name);
  for (size_t i = 0; !t && i < h->attached.size(); ++i) t = h->attached[i]->tensor(name);
  if (!t) return SPECD_E_INVALID_ARG;
  out->struct_size = sizeof(specd_tensor);
  out->type = static_cast<int32_t>(t->type);
  out->n_dims = static_cast<int32_t>(t->n_dims);
  for (int i = 0; i < 4; ++i) out->ne[i] = t->ne[i];
  out->handle = t;
  return SPECD_OK;
}

// Buffers count in the runtime's plugin-memory account like mem_alloc does; a count no vector can hold
// is SPECD_E_NOMEM, never an exception through the C caller.
int buf_create(specd_host* h, size_t n, specd_buf** out) {
  if (!out) return SPECD_E_INVALID_ARG;
  *out = nullptr;
  if (!h || !h->rt) return SPECD_E_INVALID_ARG;
  if (n > (std::numeric_limits<size_t>::max() - sizeof(specd_buf)) / sizeof(float)) return SPECD_E_NOMEM;
  const size_t bytes = sizeof(specd_buf) + n * sizeof(float);
  if (!h->rt->reserve_plugin_bytes(bytes)) return SPECD_E_NOMEM;
  try {
    *out = new specd_buf{std::vector<float>(n, 0.0f), h->rt, bytes};
  } catch (const std::exception&) {
    h->rt->release_plugin_bytes(bytes);
    return SPECD_E_NOMEM;
  }
  return SPECD_OK;
}

void buf_destroy(specd_host*, specd_buf* b) {
  if (!b) return;
  b->rt->release_plugin_bytes(b->bytes);
  delete b;
}

int buf_write(specd_host*, specd_buf* b, size_t off, const float* src, size_t n) {
  if (!fits(b, off, n) || (n && !src)) return SPECD_E_INVALID_ARG;
  std::copy_n(src, n, b->data.begin() + static_cast<std::ptrdiff_t>(off));
  return SPECD_OK;
}

int buf_read(specd_host*, const specd_buf* b, size_t off, float* dst, size_t n) {
  if (!fits(b, off, n) || (n && !dst)) return SPECD_E_INVALID_ARG;
  std::copy_n(b->data.begin() + static_cast<std::ptrdiff_t>(off), n, dst);
  return SPECD_OK;
}

int gemm(specd_host* h, const specd_tensor* w, const specd_tensor* bias, const specd_buf* x, int32_t m, specd_buf* y) {
  const engine::GgufTensorInfo* wt = info(w);
  if (!h || !wt || wt->n_dims > 2 || m < 0) return SPECD_E_INVALID_ARG;
  const kernels::WeightView wv = view(*wt);
  const size_t K = static_cast<size_t>(wv.cols), N = static_cast<size_t>(wv.rows), M = static_cast<size_t>(m);
  if (!fits(x, 0, M * K) || !fits(y, 0, M * N)) return SPECD_E_INVALID_ARG;
  const engine::GgufTensorInfo* bt = info(bias);
  if (bias && (!bt || bt->type != specd::GgmlType::F32 || bt->n_elements() != static_cast<int64_t>(N)))
    return SPECD_E_INVALID_ARG;
  kernels::matmul(wv, x->data.data(), static_cast<int64_t>(K), m, y->data.data(), static_cast<int64_t>(N), h->rt->pool());
  if (bt) {
    const float* bv = reinterpret_cast<const float*>(bt->data);
    for (size_t i = 0; i < M; ++i)
      for (size_t j = 0; j < N; ++j) y->data[i * N + j] += bv[j];
  }
  return SPECD_OK;
}

int embed(specd_host* h, const specd_tensor* table, const int32_t* ids, int32_t n, specd_buf* y) {
  const engine::GgufTensorInfo* t = info(table);
  if (!h || !t || t->n_dims != 2 || n < 0 || (n && !ids)) return SPECD_E_INVALID_ARG;
  const kernels::WeightView wv = view(*t);
  if (!fits(y, 0, static_cast<size_t>(n) * static_cast<size_t>(wv.cols))) return SPECD_E_INVALID_ARG;
  for (int32_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= wv.rows) return SPECD_E_BAD_TOKEN;
    kernels::weight_row_to_f32(wv, ids[i], y->data.data() + static_cast<size_t>(i) * static_cast<size_t>(wv.cols));
  }
  return SPECD_OK;
}

int silu(specd_host*, specd_buf* x, size_t n) {
  if (!fits(x, 0, n)) return SPECD_E_INVALID_ARG;
  for (size_t i = 0; i < n; ++i) x->data[i] = x->data[i] / (1.0f + std::exp(-x->data[i]));
  return SPECD_OK;
}

int add(specd_host*, const specd_buf* a, const specd_buf* b, specd_buf* y, size_t n) {
  if (!fits(a, 0, n) || !fits(b, 0, n) || !fits(y, 0, n)) return SPECD_E_INVALID_ARG;
  for (size_t i = 0; i < n; ++i) y->data[i] = a->data[i] + b->data[i];
  return SPECD_OK;
}

int log_softmax(specd_host*, specd_buf* x, int32_t rows, int32_t cols) {
  if (rows < 0 || cols <= 0 || !fits(x, 0, static_cast<size_t>(rows) * static_cast<size_t>(cols)))
    return SPECD_E_INVALID_ARG;
  for (int32_t r = 0; r < rows; ++r) {
    float* v = x->data.data() + static_cast<size_t>(r) * static_cast<size_t>(cols);
    const float mx = *std::max_element(v, v + cols);
    double sum = 0.0;
    for (int32_t i = 0; i < cols; ++i) sum += std::exp(static_cast<double>(v[i] - mx));
    const float lse = mx + static_cast<float>(std::log(sum));
    for (int32_t i = 0; i < cols; ++i) v[i] -= lse;
  }
  return SPECD_OK;
}

int topk(specd_host*, const specd_buf* x, int32_t rows, int32_t cols, int32_t k, int32_t* ids, float* vals) {
  if (rows < 0 || cols <= 0 || k <= 0 || k > cols || !ids || !vals ||
      !fits(x, 0, static_cast<size_t>(rows) * static_cast<size_t>(cols)))
    return SPECD_E_INVALID_ARG;
  for (int32_t r = 0; r < rows; ++r) {
    const float* v = x->data.data() + static_cast<size_t>(r) * static_cast<size_t>(cols);
    int32_t* out = ids + static_cast<size_t>(r) * static_cast<size_t>(k);
    // Insertion into a sorted top-k list: k is small (beam widths), cols up to the vocab.
    int32_t n = 0;
    for (int32_t i = 0; i < cols; ++i) {
      int32_t at = n;
      while (at > 0 && v[i] > v[out[at - 1]]) --at;
      if (at >= k) continue;
      for (int32_t j = std::min(n, k - 1); j > at; --j) out[j] = out[j - 1];
      out[at] = i;
      n = std::min(n + 1, k);
    }
    for (int32_t j = 0; j < k; ++j) vals[static_cast<size_t>(r) * static_cast<size_t>(k) + static_cast<size_t>(j)] = v[out[j]];
  }
  return SPECD_OK;
}

}  // namespace specd::daemon::tensor_ops
