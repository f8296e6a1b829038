// The doctest main shared by every suite. A suite asked to run on a device this machine lacks
// (SPECD_TEST_DEVICE, tests/test_device.h) says so and exits 77, meson's "skipped".
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

namespace specd::test {
std::string test_device();
std::string test_device_unavailable();
}  // namespace specd::test

int main(int argc, char** argv) {
  if (const std::string why = specd::test::test_device_unavailable(); !why.empty()) {
    std::printf("skipped: %s (SPECD_TEST_DEVICE=%s)\n", why.c_str(), specd::test::test_device().c_str());
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
