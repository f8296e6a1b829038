// Loading a model for `specd serve` with progress on stderr, its weights read in before the first
// request: the file is memory-mapped, so otherwise the first request pays for reading every page
// from disk (seconds for a 1B model) and nothing says why it is slow.
#pragma once

#include "engine/model.h"
#include "kernels/result.h"

#include <atomic>
#include <memory>
#include <span>
#include <string>

namespace specd::daemon {

// Touch every page of bytes from `threads` threads (at least 1); done counts the bytes touched so
// far, for a progress line. Reads only: the mapping stays shared with the page cache.
void prefault(std::span<const uint8_t> bytes, int threads, std::atomic<size_t>* done);

// Model::load(path), then prefault its file with a progress line every second or so. threads 0:
// every core. Errors: Model::load's, prefixed with the model's name and path.
Result<std::unique_ptr<engine::Model>> load_model_with_progress(const std::string& name, const std::string& path,
                                                               int threads);

}  // namespace specd::daemon
