// The decoder ABI's tensor ops on the model's backend: buffers are backend memory (MemUse::Plugin),
// every op is enqueued on the backend, and the calls that hand data back to the plugin (buf_read,
// op_topk) wait at the backend's sync(), where a device error becomes the call's result.
#include "daemon/host_tensor_ops.h"

#include "daemon/decode_runtime.h"
#include "daemon/sequence_state.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <new>
#include <vector>

struct specd_buf {
  float* data = nullptr;  // backend memory
  size_t n = 0;           // floats
  specd::daemon::DecodeRuntime* rt = nullptr;  // whose plugin-memory account holds `bytes`
  size_t bytes = 0;
  specd_host* host = nullptr;  // the instance whose list holds it (buf_destroy may be given another h)
};

namespace specd::daemon::tensor_ops {
namespace {

const engine::GgufTensorInfo* info(const specd_tensor* t) {
  return t ? static_cast<const engine::GgufTensorInfo*>(t->handle) : nullptr;
}

bool fits(const specd_buf* b, size_t off, size_t n) { return b && off <= b->n && n <= b->n - off; }

kernels::WeightView view(const engine::GgufTensorInfo& t) {
  const int64_t rows = t.n_dims >= 2 ? t.ne[1] : 1;
  return {t.type, t.data, rows, t.ne[0], specd::ggml_row_bytes(t.type, t.ne[0])};
}

kernels::Backend& backend(specd_host* h) { return h->rt->forward().backend(); }

int synced(specd_host* h) {
  Status st = backend(h).sync();
  return st ? SPECD_OK : st.error().code;
}

void destroy(specd_buf* b) {
  b->rt->forward().backend().free(b->data);
  b->rt->release_plugin_bytes(b->bytes);
  delete b;
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

// Buffers count in the runtime's plugin-memory account like mem_alloc does, and in the backend's
// plugin ledger; a count no buffer can hold is SPECD_E_NOMEM, never an exception through the C caller.
int buf_create(specd_host* h, size_t n, specd_buf** out) {
  if (!out) return SPECD_E_INVALID_ARG;
  *out = nullptr;
  if (!h || !h->rt) return SPECD_E_INVALID_ARG;
  if (n > (std::numeric_limits<size_t>::max() - sizeof(specd_buf)) / sizeof(float)) return SPECD_E_NOMEM;
  const size_t bytes = sizeof(specd_buf) + n * sizeof(float);
  if (!h->rt->reserve_plugin_bytes(bytes)) return SPECD_E_NOMEM;
  auto* b = new (std::nothrow) specd_buf{nullptr, n, h->rt, bytes, h};
  auto mem = b ? backend(h).alloc(kernels::MemUse::Plugin, n * sizeof(float)) : Result<void*>(Error{SPECD_E_NOMEM, ""});
  if (!mem) {
    delete b;
    h->rt->release_plugin_bytes(bytes);
    return SPECD_E_NOMEM;
  }
  b->data = static_cast<float*>(*mem);
  backend(h).zero(b->data, n * sizeof(float));
  try {
    h->bufs.push_back(b);
  } catch (const std::bad_alloc&) {
    destroy(b);
    return SPECD_E_NOMEM;
  }
  *out = b;
  return SPECD_OK;
}

void buf_destroy(specd_host*, specd_buf* b) {
  if (!b) return;
  std::erase(b->host->bufs, b);  // not h's list: a NULL or other h must not leave it to be freed twice
  destroy(b);
}

void free_forgotten(specd_host* h) {
  if (h->bufs.empty()) return;
  size_t bytes = 0;
  for (specd_buf* b : h->bufs) bytes += b->bytes;
  std::fprintf(stderr, "specd: [warn] decoder '%s' left %zu buffer(s), %zu bytes, at destroy; the host freed them\n",
               h->decoder ? h->decoder->name.c_str() : "?", h->bufs.size(), bytes);
  for (specd_buf* b : h->bufs) destroy(b);
  h->bufs.clear();
}

int buf_write(specd_host* h, specd_buf* b, size_t off, const float* src, size_t n) {
  if (!h || !fits(b, off, n) || (n && !src)) return SPECD_E_INVALID_ARG;
  backend(h).copy_to_device(b->data + off, src, n * sizeof(float));
  return SPECD_OK;
}

int buf_read(specd_host* h, const specd_buf* b, size_t off, float* dst, size_t n) {
  if (!h || !fits(b, off, n) || (n && !dst)) return SPECD_E_INVALID_ARG;
  backend(h).copy_to_host(dst, b->data + off, n * sizeof(float));
  return synced(h);
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
  auto w_dev = h->rt->device_weight(wv);
  if (!w_dev) return w_dev.error().code;
  kernels::Backend& be = backend(h);
  be.gemm(*w_dev, x->data, static_cast<int64_t>(K), m, y->data, static_cast<int64_t>(N));
  if (bt) {
    auto b_dev = h->rt->device_weight(view(*bt));
    if (!b_dev) return b_dev.error().code;
    const float* bv = static_cast<const float*>(b_dev->data);
    for (size_t i = 0; i < M; ++i) be.add(y->data + i * N, bv, static_cast<int64_t>(N));
  }
  return SPECD_OK;
}

int embed(specd_host* h, const specd_tensor* table, const int32_t* ids, int32_t n, specd_buf* y) {
  const engine::GgufTensorInfo* t = info(table);
  if (!h || !t || t->n_dims != 2 || n < 0 || (n && !ids)) return SPECD_E_INVALID_ARG;
  const kernels::WeightView wv = view(*t);
  if (!fits(y, 0, static_cast<size_t>(n) * static_cast<size_t>(wv.cols))) return SPECD_E_INVALID_ARG;
  for (int32_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= wv.rows) return SPECD_E_BAD_TOKEN;
  auto t_dev = h->rt->device_weight(wv);
  if (!t_dev) return t_dev.error().code;
  backend(h).embed(*t_dev, ids, n, y->data);
  return SPECD_OK;
}

int silu(specd_host* h, specd_buf* x, size_t n) {
  if (!h || !fits(x, 0, n)) return SPECD_E_INVALID_ARG;
  backend(h).silu(x->data, static_cast<int64_t>(n));
  return SPECD_OK;
}

int add(specd_host* h, const specd_buf* a, const specd_buf* b, specd_buf* y, size_t n) {
  if (!h || !fits(a, 0, n) || !fits(b, 0, n) || !fits(y, 0, n)) return SPECD_E_INVALID_ARG;
  backend(h).add3(a->data, b->data, y->data, static_cast<int64_t>(n));
  return SPECD_OK;
}

int log_softmax(specd_host* h, specd_buf* x, int32_t rows, int32_t cols) {
  if (!h || rows < 0 || cols <= 0 || !fits(x, 0, static_cast<size_t>(rows) * static_cast<size_t>(cols)))
    return SPECD_E_INVALID_ARG;
  backend(h).log_softmax(x->data, rows, cols);
  return SPECD_OK;
}

int topk(specd_host* h, const specd_buf* x, int32_t rows, int32_t cols, int32_t k, int32_t* ids, float* vals) {
  if (!h || rows < 0 || cols <= 0 || k <= 0 || k > cols || !ids || !vals ||
      !fits(x, 0, static_cast<size_t>(rows) * static_cast<size_t>(cols)))
    return SPECD_E_INVALID_ARG;
  backend(h).topk(x->data, rows, cols, k, ids, vals);
  return synced(h);
}

}  // namespace specd::daemon::tensor_ops

specd_host::~specd_host() { specd::daemon::tensor_ops::free_forgotten(this); }
