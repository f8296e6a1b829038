// Decoders for the messages a client receives: verified wire tables → the C++ structs of messages.h.
#pragma once

#include "clients/messages.h"
#include "kernels/result.h"
#include "protocol_generated.h"

namespace specd::clients {

Welcome decode_welcome(const wire::Welcome& w);
// Borrowed from the frame: valid while the frame is.
TokenEventView view_token_event(const wire::TokenEvent& ev);
Finished decode_finished(const wire::Finished& f);
StatusInfo decode_status(const wire::StatusReply& s);
RunList decode_run_list(const wire::RunList& r);
// The daemon's Error as an Error; a non-negative code (not a SPECD_E_*) becomes SPECD_E_PROTOCOL.
Error decode_error(const wire::Error& e);
// "StatusReply", for messages about unexpected replies.
const char* body_name(wire::Body type);

}  // namespace specd::clients
