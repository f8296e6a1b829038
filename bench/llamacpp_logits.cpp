// llamacpp_logits: the reference side of tests/test_arch_golden.cpp, built against llama.cpp's
// libllama by bench/llamacpp_logits.sh (never by meson: CI must not need llama.cpp).
//
// usage: llamacpp_logits MODEL.gguf TEXT_FILE N_GREEDY TOP_K > expected.txt
// Tokenizes the text as llama_tokenize(add_special = true, parse_special = false), runs it as one
// batch (F32 KV cache, no flash attention: the closest llama.cpp gets to exact f32), and prints:
//   tokens ID ID ...                          the prompt's ids
//   pos P mean M std S top ID:LOGIT ...       per prompt position: the full row's mean and standard
//                                             deviation, and its TOP_K largest logits (descending)
//   greedy ID ID ...                          N_GREEDY argmax continuations, one token at a time
//   greedy_margin M M ...                     each one's top-1 minus top-2 logit
#include "llama.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

namespace {

void quiet(ggml_log_level, const char*, void*) {}

int argmax(const float* v, int n) { return static_cast<int>(std::max_element(v, v + n) - v); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s MODEL.gguf TEXT_FILE N_GREEDY TOP_K\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[2], std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const int n_greedy = std::atoi(argv[3]), top_k = std::atoi(argv[4]);

  llama_log_set(quiet, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) {
    std::fprintf(stderr, "cannot load %s\n", argv[1]);
    return 1;
  }
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int n_vocab = llama_vocab_n_tokens(vocab);
  std::vector<llama_token> toks(text.size() + 8);
  const int n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), toks.data(),
                               static_cast<int32_t>(toks.size()), true, false);
  if (n < 0) return 1;
  toks.resize(static_cast<size_t>(n));

  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(n + n_greedy + 16);
  cp.n_batch = cp.n_ubatch = static_cast<uint32_t>(n + 16);
  cp.type_k = GGML_TYPE_F32;
  cp.type_v = GGML_TYPE_F32;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.n_threads = cp.n_threads_batch = 2;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) return 1;

  llama_batch b = llama_batch_init(n, 0, 1);
  for (int i = 0; i < n; ++i) {
    b.token[i] = toks[static_cast<size_t>(i)];
    b.pos[i] = i;
    b.n_seq_id[i] = 1;
    b.seq_id[i][0] = 0;
    b.logits[i] = 1;
  }
  b.n_tokens = n;
  if (llama_decode(ctx, b) != 0) return 1;

  std::printf("tokens");
  for (llama_token t : toks) std::printf(" %d", t);
  std::printf("\n");
  std::vector<int> idx(static_cast<size_t>(n_vocab));
  for (int i = 0; i < n; ++i) {
    const float* l = llama_get_logits_ith(ctx, i);
    double sum = 0, sq = 0;
    for (int j = 0; j < n_vocab; ++j) sum += l[j];
    const double mean = sum / n_vocab;
    for (int j = 0; j < n_vocab; ++j) sq += (l[j] - mean) * (l[j] - mean);
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + top_k, idx.end(), [l](int a, int c) { return l[a] > l[c] || (l[a] == l[c] && a < c); });
    std::printf("pos %d mean %.6g std %.6g top", i, mean, std::sqrt(sq / n_vocab));
    for (int k = 0; k < top_k; ++k) std::printf(" %d:%.9g", idx[static_cast<size_t>(k)], l[idx[static_cast<size_t>(k)]]);
    std::printf("\n");
  }
  // The margin between the best and second-best logit of each greedy choice: a near tie there is
  // where two correct implementations may part ways.
  auto margin = [n_vocab](const float* l, int best) {
    float second = -INFINITY;
    for (int j = 0; j < n_vocab; ++j)
      if (j != best) second = std::max(second, l[j]);
    return l[best] - second;
  };
  const float* last = llama_get_logits_ith(ctx, n - 1);
  int next = argmax(last, n_vocab);
  std::vector<float> margins = {margin(last, next)};
  std::printf("greedy");
  for (int g = 0; g < n_greedy; ++g) {
    std::printf(" %d", next);
    llama_batch one = llama_batch_get_one(&next, 1);
    if (llama_decode(ctx, one) != 0) return 1;
    const float* l = llama_get_logits_ith(ctx, -1);
    next = argmax(l, n_vocab);
    margins.push_back(margin(l, next));
  }
  std::printf("\ngreedy_margin");
  for (int g = 0; g < n_greedy; ++g) std::printf(" %.4g", margins[static_cast<size_t>(g)]);
  std::printf("\n");
  llama_batch_free(b);
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
