// The device the engine and runtime suites run on: SPECD_TEST_DEVICE ("cpu" when unset).
//
// tests/meson.build runs the forward-primitive, lossless and golden suites a second time with
// SPECD_TEST_DEVICE=cuda when the build has the CUDA backend. On a machine without a GPU that run
// prints "skipped: no GPU" and exits 77, which meson shows as SKIP: never a silent pass.
#pragma once

#include "engine/model.h"
#include "engine/model_weights.h"

#include <string>

namespace specd::test {

std::string test_device();
// Why test_device() cannot run here ("no GPU", ...), or "" when it can. test_main.cpp checks it first.
std::string test_device_unavailable();
// model's weights on test_device(), placed once per model for the whole process; nullptr for "cpu"
// (the fixtures' forwards then make their own CPU backend, as they always did).
const engine::ModelWeights* test_weights(const engine::Model& model);

}  // namespace specd::test
