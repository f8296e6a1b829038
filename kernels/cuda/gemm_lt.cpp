// LtGemm: cuBLASLt matmuls with a pinned algorithm per weight shape; see gemm_lt.h for why.
#include "kernels/cuda/gemm_lt.h"

namespace specd::kernels::cuda {
namespace {

// Descriptors live in opaque stack storage (…Init, not …Create), so a call allocates nothing.
struct Descs {
  cublasLtMatmulDescOpaque_t op;
  cublasLtMatrixLayoutOpaque_t a, b, d;
};

cudaDataType_t cuda_type(GgmlType t) {
  switch (t) {
    case GgmlType::BF16: return CUDA_R_16BF;
    case GgmlType::F16: return CUDA_R_16F;
    default: return CUDA_R_32F;
  }
}

size_t elem_bytes(GgmlType t) { return t == GgmlType::F32 ? 4 : 2; }

// Column-major view of the row-major problem: A = w as K×N (ld = row stride) used transposed,
// B = x as K×m (ld = ldx), D = y as N×m (ld = ldy); D = Aᵀ·B.
cublasStatus_t make_descs(Descs& s, GgmlType type, int64_t n, int64_t k, int64_t lda, int64_t m, int64_t ldx,
                          int64_t ldy) {
  const cudaDataType_t t = cuda_type(type);
  cublasStatus_t st = cublasLtMatmulDescInit(&s.op, CUBLAS_COMPUTE_32F, CUDA_R_32F);  // f32 accumulation, no TF32
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  st = cublasLtMatmulDescSetAttribute(&s.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
  if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulDescSetAttribute(&s.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatrixLayoutInit(&s.a, t, static_cast<uint64_t>(k), static_cast<uint64_t>(n), lda);
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatrixLayoutInit(&s.b, t, static_cast<uint64_t>(k), static_cast<uint64_t>(m), ldx);
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatrixLayoutInit(&s.d, CUDA_R_32F, static_cast<uint64_t>(n), static_cast<uint64_t>(m), ldy);
  return st;
}

// Set split-K 1 and no reduction scheme on algo; true when it ends up with both.
bool pin_unsplit(cublasLtMatmulAlgo_t& algo) {
  int32_t split = 1;
  uint32_t reduction = CUBLASLT_REDUCTION_SCHEME_NONE;
  cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split, sizeof split);
  cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &reduction, sizeof reduction);
  size_t written = 0;
  if (cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split, sizeof split, &written) !=
          CUBLAS_STATUS_SUCCESS ||
      cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &reduction, sizeof reduction,
                                           &written) != CUBLAS_STATUS_SUCCESS)
    return false;
  return split <= 1 && reduction == CUBLASLT_REDUCTION_SCHEME_NONE;
}

}  // namespace

LtGemm::~LtGemm() {
  if (handle_) cublasLtDestroy(handle_);
}

Status LtGemm::init() {
  const cublasStatus_t st = cublasLtCreate(&handle_);
  if (st != CUBLAS_STATUS_SUCCESS)
    return make_error(SPECD_E_DEVICE, "cublasLtCreate: %s", cublasLtGetStatusName(st));
  return {};
}

Result<cublasLtMatmulAlgo_t> LtGemm::algo_for(const WeightView& w, int64_t lda) {
  const Key key{w.type, w.rows, w.cols, lda};
  if (auto it = algos_.find(key); it != algos_.end()) return it->second;

  Descs s;
  cublasStatus_t st = make_descs(s, w.type, w.rows, w.cols, lda, kLtAlgoM, w.cols, w.rows);
  cublasLtMatmulPreferenceOpaque_t pref;
  if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulPreferenceInit(&pref);
  // No workspace and no reduction scheme: the heuristic may only offer unsplit algorithms.
  const uint64_t workspace = 0;
  const uint32_t no_reduction = CUBLASLT_REDUCTION_SCHEME_NONE;
  const uint32_t align_a = 256, align_any = 4;  // weights come from the pool; activations from anywhere
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof workspace);
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &no_reduction,
                                              sizeof no_reduction);
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a, sizeof align_a);
  for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulPreferenceSetAttribute(&pref, attr, &align_any, sizeof align_any);
  if (st != CUBLAS_STATUS_SUCCESS)
    return make_error(SPECD_E_DEVICE, "cuBLASLt descriptors for %s %lldx%lld: %s", ggml_type_name(w.type),
                      static_cast<long long>(w.rows), static_cast<long long>(w.cols), cublasLtGetStatusName(st));

  cublasLtMatmulHeuristicResult_t found[8];
  int n_found = 0;
  st = cublasLtMatmulAlgoGetHeuristic(handle_, &s.op, &s.a, &s.b, &s.d, &s.d, &pref, 8, found, &n_found);
  for (int i = 0; st == CUBLAS_STATUS_SUCCESS && i < n_found; ++i) {
    cublasLtMatmulAlgo_t algo = found[i].algo;
    // Pin the unsplit configuration explicitly, so no default can change it later; an algorithm that
    // refuses the setting is kept only if it is unsplit already.
    if (!pin_unsplit(algo)) continue;
    cublasLtMatmulHeuristicResult_t check;
    if (cublasLtMatmulAlgoCheck(handle_, &s.op, &s.a, &s.b, &s.d, &s.d, &algo, &check) != CUBLAS_STATUS_SUCCESS ||
        check.workspaceSize > 0)
      continue;
    algos_.emplace(key, algo);
    return algo;
  }
  return make_error(SPECD_E_DEVICE, "cuBLASLt has no unsplit algorithm for %s %lldx%lld%s%s", ggml_type_name(w.type),
                    static_cast<long long>(w.rows), static_cast<long long>(w.cols),
                    st == CUBLAS_STATUS_SUCCESS ? "" : ": ", st == CUBLAS_STATUS_SUCCESS ? "" : cublasLtGetStatusName(st));
}

Status LtGemm::run(const WeightView& w, const void* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
                   cudaStream_t stream) {
  if (w.type != GgmlType::F32 && w.type != GgmlType::BF16 && w.type != GgmlType::F16)
    return make_error(SPECD_E_UNSUPPORTED, "cuda gemm: %s weights (Q8_0 is dequantised at upload_weight)",
                      ggml_type_name(w.type));
  if (m <= 0 || w.rows <= 0) return {};
  const int64_t lda = static_cast<int64_t>(w.row_bytes / elem_bytes(w.type));
  auto algo = algo_for(w, lda);
  if (!algo) return algo.error();
  Descs s;
  cublasStatus_t st = make_descs(s, w.type, w.rows, w.cols, lda, m, ldx, ldy);
  const float one = 1.0f, zero = 0.0f;
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmul(handle_, &s.op, &one, w.data, &s.a, x, &s.b, &zero, y, &s.d, y, &s.d, &*algo, nullptr, 0,
                        stream);
  if (st != CUBLAS_STATUS_SUCCESS)
    return make_error(SPECD_E_DEVICE, "cublasLtMatmul %s %lldx%lld, m=%lld: %s", ggml_type_name(w.type),
                      static_cast<long long>(w.rows), static_cast<long long>(w.cols), static_cast<long long>(m),
                      cublasLtGetStatusName(st));
  return {};
}

}  // namespace specd::kernels::cuda
