// Encoders for the messages a client sends: each returns one finished Envelope FlatBuffer (no length prefix).
#pragma once

#include "clients/messages.h"

#include <cstdint>
#include <string_view>
#include <vector>

namespace specd::clients {

// Hello travels as request 0; requests use ids from 1.
std::vector<uint8_t> encode_hello(std::string_view client_name);
std::vector<uint8_t> encode_generate(uint64_t request_id, const GenerateRequest& req);
std::vector<uint8_t> encode_cancel(uint64_t request_id);
std::vector<uint8_t> encode_status_request(uint64_t request_id);
std::vector<uint8_t> encode_list_runs(uint64_t request_id, const RunsQuery& query);

}  // namespace specd::clients
