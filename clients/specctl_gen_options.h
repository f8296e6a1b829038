// The generation options `specctl generate` and `specctl chat` share: model, decoder and its
// options, sampling, stop strings; checked before connecting, so usage errors never need a daemon.
#pragma once

#include "clients/specctl_args.h"
#include "clients/specd_client.hpp"
#include "kernels/result.h"

#include <string>
#include <vector>

namespace specd::specctl {

// "K=V" items (--decoder-opt, chat's /decoder) → a JSON object {"K":"V"} (values travel as
// strings), "" for none. Errors: SPECD_E_INVALID_ARG naming the item without a key or '='.
Result<std::string> decoder_options_json(const std::vector<std::string>& items);

// Every generation option of a but the prompt. Errors: SPECD_E_INVALID_ARG naming the option
// and its accepted range.
Result<client::GenParams> gen_options(const Args& a);

}  // namespace specd::specctl
