// specd-quantize: rewrites a GGUF model with its matrices in another stored type, as llama-quantize
// does without an importance matrix (same quantizers, same Q4_K_M/Q5_K_M mix: tools/quant_recipe.h).
//
// Every 2-D tensor is converted to f32 and quantized with kernels/cpu/quant_k.h (or widened/narrowed
// to F32/F16/BF16); 1-D tensors (norm gains) and metadata are copied as they are. From a BF16 or F32
// file the result holds the bytes llama-quantize writes for the same tensors (tests/test_tools.cpp).
#include "engine/gguf_reader.h"
#include "engine/gguf_writer.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant_k.h"
#include "kernels/result.h"
#include "tools/quant_recipe.h"
#include "tools/tool_main.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using specd::GgmlType;
using specd::make_error;
using specd::Result;
using specd::Status;
using specd::engine::GgufFile;
using specd::engine::GgufWriter;

struct Args {
  std::string model, out;
  specd::tools::QuantRecipe type;
};

const char* kUsage =
    "usage: specd-quantize --model IN.gguf --out OUT.gguf --type TYPE\n"
    "  TYPE: f32|f16|bf16|q8_0|q4_0|q4_k|q5_k|q6_k, or llama.cpp's mixes q4_k_m|q5_k_m.\n"
    "  Rewrites every matrix in TYPE (norm gains and metadata are copied), with llama.cpp's reference\n"
    "  quantizers: from the same BF16/F32 file, the bytes llama-quantize writes.\n";

Result<Args> args_from(const specd::cli::CliArgs& c) {
  Args a;
  a.model = c.str("model");
  a.out = c.str("out");
  if (a.model.empty() || a.out.empty() || !c.has("type"))
    return make_error(SPECD_E_INVALID_ARG, "--model, --out and --type are required");
  auto type = specd::tools::parse_quant_recipe(c.str("type"));
  if (!type) return type.error();
  a.type = *type;
  return a;
}

// One row of f32 values in `t`'s type.
void store_row(GgmlType t, const float* row, int64_t cols, uint8_t* dst) {
  if (t == GgmlType::F32) {
    std::memcpy(dst, row, static_cast<size_t>(cols) * sizeof(float));
    return;
  }
  if (t == GgmlType::F16 || t == GgmlType::BF16) {
    for (int64_t k = 0; k < cols; ++k) {
      const uint16_t h = t == GgmlType::F16 ? specd::kernels::f32_to_f16(row[k]) : specd::kernels::f32_to_bf16(row[k]);
      std::memcpy(dst + 2 * k, &h, 2);
    }
    return;
  }
  specd::kernels::quantize_row(t, row, cols, dst);
}

Status quantize(Args& a) {
  auto file = GgufFile::open(a.model);
  if (!file) return file.error();
  const GgufFile& f = **file;
  const std::string arch(f.get_string("general.architecture").value_or("llama"));
  const int64_t n_layers = f.get_int(arch + ".block_count").value_or(0);
  GgufWriter w;
  for (const auto& kv : f.metadata()) SPECD_TRY(w.copy_kv(kv));
  std::vector<std::unique_ptr<uint8_t[]>> bufs;  // borrowed by the writer until write()
  size_t in_bytes = 0, out_bytes = 0;
  for (const auto& t : f.tensors()) {
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    const std::string name(t.name);
    in_bytes += t.nbytes;
    if (t.n_dims != 2) {
      SPECD_TRY(w.add_tensor(name, t.type, ne, {t.data, t.nbytes}));
      out_bytes += t.nbytes;
      continue;
    }
    const int64_t cols = t.ne[0], rows = t.ne[1];
    const GgmlType to = specd::tools::recipe_type(a.type, name, cols, n_layers);
    const size_t rb = specd::ggml_row_bytes(to, cols), n = rb * static_cast<size_t>(rows);
    uint8_t* buf = bufs.emplace_back(std::make_unique_for_overwrite<uint8_t[]>(n)).get();
    const specd::kernels::WeightView src{t.type, t.data, rows, cols, specd::ggml_row_bytes(t.type, cols)};
    // Rows are independent: threads take interleaved rows (the output does not depend on the split).
    auto work = [&](int64_t first, int64_t step) {
      std::vector<float> row(static_cast<size_t>(cols));
      for (int64_t r = first; r < rows; r += step) {
        specd::kernels::weight_row_to_f32(src, r, row.data());
        store_row(to, row.data(), cols, buf + static_cast<size_t>(r) * rb);
      }
    };
    {
      const int64_t n_threads = std::max<int64_t>(1, std::thread::hardware_concurrency());
      std::vector<std::jthread> pool;
      for (int64_t i = 1; i < n_threads; ++i) pool.emplace_back(work, i, n_threads);
      work(0, n_threads);
    }
    SPECD_TRY(w.add_tensor(name, to, ne, {buf, n}));
    out_bytes += n;
  }
  SPECD_TRY(w.write(a.out));
  std::fprintf(stderr, "specd-quantize: wrote %s (%s): %.1f MB of tensors from %.1f MB\n", a.out.c_str(),
               a.type.name.c_str(), static_cast<double>(out_bytes) / 1e6, static_cast<double>(in_bytes) / 1e6);
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  return specd::tools::tool_main("specd-quantize", kUsage, argc, argv, {"model", "out", "type"}, args_from, quantize);
}
