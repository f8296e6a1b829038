// `specctl models` and the models part of `specctl status`: each loaded model's architecture,
// parameters, weight types, context, file size and device, as text or JSON.
#pragma once

#include "clients/specd_client.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace specd::specctl {

// 16384 → "16.0 KiB".
std::string human_bytes(uint64_t bytes);

// 1234567 → "1.23M"; below 1000 the number itself.
std::string human_count(uint64_t n);

// "Q4_K 67%, Q6_K 12%, F32 21%": each type's share of the tensor bytes, in the order given
// (the daemon sends the largest first); a type under 0.5% shows as "<1%" so none disappears.
std::string weight_type_mix(const std::vector<client::ModelStatus::WeightType>& types);

// One JSON object per model (every field of ModelStatus; weight_types with each type's share).
nlohmann::json models_json(const client::Status& s);

// A block of lines per model, for people.
void print_models(const client::Status& s);

}  // namespace specd::specctl
