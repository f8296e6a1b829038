// ModelSummary: per-type sums over a GGUF file's tensor table.
#include "engine/model_summary.h"

#include <algorithm>
#include <map>

namespace specd::engine {

ModelSummary summarize_model(const GgufFile& file) {
  ModelSummary s;
  if (auto arch = file.get_string("general.architecture")) s.architecture = std::string(*arch);
  s.file_bytes = file.bytes().size();
  std::map<std::string, WeightTypeShare> by_type;
  for (const GgufTensorInfo& t : file.tensors()) {
    const auto n = static_cast<uint64_t>(t.n_elements());
    s.parameters += n;
    WeightTypeShare& share = by_type[ggml_type_name(t.type)];
    share.parameters += n;
    share.bytes += t.nbytes;
  }
  for (auto& [name, share] : by_type) {
    share.type = name;
    s.types.push_back(share);
  }
  std::stable_sort(s.types.begin(), s.types.end(),
                   [](const WeightTypeShare& a, const WeightTypeShare& b) { return a.bytes > b.bytes; });
  return s;
}

}  // namespace specd::engine
