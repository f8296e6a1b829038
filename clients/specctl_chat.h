// `specctl chat`: a multi-turn conversation with a model through the daemon, which renders the
// model's chat template (or joins the turns as plain text for a model without one).
#pragma once

#include "clients/specctl_args.h"
#include "clients/specd_client.hpp"

namespace specd::specctl {

// Read user messages from stdin (one per line), stream each answer to stdout and a line of
// figures to stderr, until /exit, end of input or a Ctrl-C at the prompt. base holds the model,
// decoder and sampling (chat_params: generate's options but the prompt); --system TEXT starts the conversation; with --json each
// answer is one JSON object on stdout. Returns the exit status: 0, or 1 when the model is not
// loaded or the connection is lost.
int run_chat(client::Client& client, const Args& a, client::GenParams base);

}  // namespace specd::specctl
