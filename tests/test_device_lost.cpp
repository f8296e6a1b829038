// A device that fails: the runtime fails the step's requests with the backend's named error, and a
// lost device (a sticky error) is reported so the daemon can exit for a restart. The CPU backend
// never fails, so a wrapper around it fails on purpose at the Nth wait point.
#include "kernels/cpu/cpu_backend.h"
#include "tests/runtime_fixture.h"

#include <doctest/doctest.h>

using namespace specd;
using namespace specd::kernels;

namespace {

// The CPU backend, except that sync() number fail_at and every later one fail with SPECD_E_DEVICE,
// as a CUDA backend does after a sticky error.
class FailingBackend final : public Backend {
 public:
  FailingBackend(ThreadPool& pool, int fail_at) : cpu_(make_cpu_backend(pool)), fail_at_(fail_at) {}
  const char* name() const override { return "failing"; }
  bool host_memory() const override { return true; }
  Result<void*> alloc(MemUse use, size_t bytes) override { return cpu_->alloc(use, bytes); }
  void free(void* p) override { cpu_->free(p); }
  MemLedger& ledger() override { return cpu_->ledger(); }
  Result<WeightView> upload_weight(const WeightView& w) override { return cpu_->upload_weight(w); }
  void copy_to_device(void* d, const void* s, size_t n) override { cpu_->copy_to_device(d, s, n); }
  void copy_to_host(void* d, const void* s, size_t n) override { cpu_->copy_to_host(d, s, n); }
  void zero(void* d, size_t n) override { cpu_->zero(d, n); }
  Status sync() override {
    if (++syncs_ < fail_at_) return cpu_->sync();
    return make_error(SPECD_E_DEVICE, "failing: sticky device error at wait point %d", syncs_);
  }
  bool device_lost() const override { return syncs_ >= fail_at_; }
  Status begin_step(const StepMeta& m) override { return cpu_->begin_step(m); }
  void gemm(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy) override {
    cpu_->gemm(w, x, ldx, m, y, ldy);
  }
  void embed(const WeightView& t, const int32_t* ids, int64_t n, float* out) override { cpu_->embed(t, ids, n, out); }
  void rms_norm(const float* x, const float* g, int64_t r, int32_t n, float eps, float* out) override {
    cpu_->rms_norm(x, g, r, n, eps, out);
  }
  void rope(float* x, int64_t ld, int32_t h, const RopeParams& p) override { cpu_->rope(x, ld, h, p); }
  void swiglu(float* g, const float* u, int64_t n) override { cpu_->swiglu(g, u, n); }
  void add(float* x, const float* y, int64_t n) override { cpu_->add(x, y, n); }
  void add_bias(float* x, const float* b, int64_t r, int32_t n) override { cpu_->add_bias(x, b, r, n); }
  void attention(const AttentionArgs& a) override { cpu_->attention(a); }
  void kv_commit(const KvCommitArgs& a) override { cpu_->kv_commit(a); }
  void silu(float* x, int64_t n) override { cpu_->silu(x, n); }
  void add3(const float* a, const float* b, float* y, int64_t n) override { cpu_->add3(a, b, y, n); }
  void log_softmax(float* x, int64_t r, int32_t c) override { cpu_->log_softmax(x, r, c); }
  void topk(const float* x, int64_t r, int32_t c, int32_t k, int32_t* ids, float* v) override { cpu_->topk(x, r, c, k, ids, v); }

 private:
  std::unique_ptr<Backend> cpu_;
  int fail_at_;
  int syncs_ = 0;
};

}  // namespace

TEST_CASE("a device error fails the step's requests with SPECD_E_DEVICE and marks the device lost") {
  ThreadPool pool(2);
  FailingBackend be(pool, 6);  // wait point 1 is the weight upload; then one per forward
  const engine::Model& m = test::stories_model();
  auto w = engine::ModelWeights::upload(m, be);
  REQUIRE(w.has_value());
  daemon::PluginRegistry plugins;
  test::RuntimeFixture::load(plugins, {"ar"});
  daemon::DecodeRuntime rt(m, plugins, pool, {}, w->get());
  CHECK_FALSE(rt.forward().backend().device_lost());
  auto r = rt.run(test::request({1, 403, 407}, 50));
  REQUIRE(r.has_value());
  CHECK(r->finish_reason == SPECD_FINISH_ERROR);
  CHECK(r->error.code == SPECD_E_DEVICE);
  CHECK_MESSAGE(r->error.message.find("sticky device error") != std::string::npos, r->error.message);
  CHECK(r->tokens.size() == 4);  // the tokens of the four forwards before the failing one
  CHECK(rt.forward().backend().device_lost());
  // Later requests fail the same way: nothing runs on a lost device.
  auto again = rt.run(test::request({1, 403}, 5));
  REQUIRE(again.has_value());
  CHECK(again->error.code == SPECD_E_DEVICE);
  CHECK(std::string(error_name(SPECD_E_DEVICE)) == "DEVICE");
}
