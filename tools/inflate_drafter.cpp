#include "tools/inflate_drafter.h"

#include "engine/gguf_writer.h"
#include "engine/model.h"

#include <cinttypes>
#include <cstring>
#include <deque>

namespace specd::tools {
namespace {

using specd::GgmlType;

Result<std::vector<float>> f32_tensor(const engine::GgufFile& f, const std::string& name, int64_t rows, int64_t cols) {
  const auto* t = f.tensor(name);
  if (!t || t->type != GgmlType::F32 || t->ne[0] != cols || t->n_elements() != rows * cols)
    return make_error(SPECD_E_BAD_MODEL, "drafter tensor %s missing or not F32 [%" PRId64 " x %" PRId64 "]",
                      name.c_str(), rows, cols);
  std::vector<float> v(static_cast<size_t>(rows * cols));
  std::memcpy(v.data(), t->data, v.size() * sizeof(float));
  return v;
}

}  // namespace

Status inflate_drafter(const engine::GgufFile& drafter, const Lift& lift, int64_t small_dim, int64_t big_dim,
                       const std::vector<double>& out_norm, const std::string& big_model_path, const std::string& out) {
  auto meta = [&](const char* k) { return drafter.get_int(std::string("specd.redrafter.") + k).value_or(-1); };
  const int64_t in = meta("input_dim"), H = meta("state_dim"), E = meta("exit_dim"), V = meta("vocab");
  if (in != small_dim || H <= 0 || E <= 0 || V <= 0)
    return make_error(SPECD_E_BAD_MODEL, "not a drafter for a model of width %" PRId64 " (input_dim %" PRId64 ")",
                      small_dim, in);
  auto big = engine::GgufFile::open(big_model_path);
  if (!big) return big.error();

  engine::GgufWriter w;
  for (const auto& kv : drafter.metadata()) SPECD_TRY(w.copy_kv(kv));
  w.set_i32("specd.redrafter.input_dim", static_cast<int32_t>(big_dim));
  w.set_string("specd.redrafter.target_digest", engine::model_digest(**big));

  std::deque<std::vector<float>> keep;  // the writer borrows tensor data until write()
  auto put = [&](const std::string& name, std::vector<float> v, std::vector<int64_t> ne) -> Status {
    const auto& d = keep.emplace_back(std::move(v));
    return w.add_tensor(name, GgmlType::F32, std::move(ne), {reinterpret_cast<const uint8_t*>(d.data()), d.size() * 4});
  };
  std::vector<double> row(static_cast<size_t>(std::max(small_dim, E)));
  // rnn_w [H x d] -> [H x D]: row r becomes R · row.
  auto rnn_w = f32_tensor(drafter, "redrafter.rnn_w.weight", H, small_dim);
  if (!rnn_w) return rnn_w.error();
  std::vector<float> big_w(static_cast<size_t>(H * big_dim));
  for (int64_t r = 0; r < H; ++r) {
    for (int64_t c = 0; c < small_dim; ++c) row[static_cast<size_t>(c)] = (*rnn_w)[static_cast<size_t>(r * small_dim + c)];
    lift(row.data(), nullptr, &big_w[static_cast<size_t>(r * big_dim)]);
  }
  SPECD_TRY(put("redrafter.rnn_w.weight", std::move(big_w), {big_dim, H}));

  // The input projection over [h_big ; s]: its h columns are P_h · diag(g_final) · Rᵀ, i.e. row r's
  // h part is R · (P_h[r] ⊙ g_final); P = [I 0; 0 I] when the drafter had none (E = d + H).
  const bool has_proj = drafter.tensor("redrafter.input_proj.weight") != nullptr;
  if (!has_proj && E != small_dim + H)
    return make_error(SPECD_E_BAD_MODEL, "drafter exit_dim %" PRId64 " != input %" PRId64 " + state %" PRId64
                      " and no input_proj", E, small_dim, H);
  std::vector<float> proj(static_cast<size_t>(small_dim + H) * static_cast<size_t>(E), 0.0f), bias(static_cast<size_t>(E), 0.0f);
  if (has_proj) {
    auto p = f32_tensor(drafter, "redrafter.input_proj.weight", E, small_dim + H);
    auto b = f32_tensor(drafter, "redrafter.input_proj.bias", 1, E);
    if (!p) return p.error();
    if (!b) return b.error();
    proj = std::move(*p);
    bias = std::move(*b);
  } else {
    for (int64_t r = 0; r < E; ++r) proj[static_cast<size_t>(r * (small_dim + H) + r)] = 1.0f;
  }
  const int64_t big_in = big_dim + H;
  std::vector<float> big_proj(static_cast<size_t>(E * big_in));
  for (int64_t r = 0; r < E; ++r) {
    const float* pr = &proj[static_cast<size_t>(r * (small_dim + H))];
    for (int64_t c = 0; c < small_dim; ++c) row[static_cast<size_t>(c)] = pr[c];
    float* br = &big_proj[static_cast<size_t>(r * big_in)];
    lift(row.data(), out_norm.data(), br);
    for (int64_t c = 0; c < H; ++c) br[big_dim + c] = pr[small_dim + c];
  }
  SPECD_TRY(put("redrafter.input_proj.weight", std::move(big_proj), {big_in, E}));
  SPECD_TRY(put("redrafter.input_proj.bias", std::move(bias), {E}));

  // Everything downstream of [h ; s] is unchanged.
  for (const auto& t : drafter.tensors()) {
    const std::string name(t.name);
    if (name == "redrafter.rnn_w.weight" || name.rfind("redrafter.input_proj.", 0) == 0) continue;
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    SPECD_TRY(w.add_tensor(name, t.type, ne, {t.data, t.nbytes}));
  }
  return w.write(out);
}

}  // namespace specd::tools
