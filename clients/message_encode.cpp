// FlatBuffer encoders for Hello, Generate, Cancel, StatusRequest and ListRuns envelopes.
#include "clients/message_encode.h"

#include "protocol_generated.h"

namespace specd::clients {
namespace {

std::vector<uint8_t> finish(flatbuffers::FlatBufferBuilder& fbb, uint64_t request_id, wire::Body type,
                            flatbuffers::Offset<void> body) {
  fbb.Finish(wire::CreateEnvelope(fbb, request_id, type, body));
  return std::vector<uint8_t>(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
}

flatbuffers::Offset<flatbuffers::String> string_or_null(flatbuffers::FlatBufferBuilder& fbb, const std::string& s) {
  // An absent field reads as "" on the other side and costs no bytes.
  return s.empty() ? flatbuffers::Offset<flatbuffers::String>() : fbb.CreateString(s);
}

}  // namespace

std::vector<uint8_t> encode_hello(std::string_view client_name) {
  flatbuffers::FlatBufferBuilder fbb(256);
  const auto name = fbb.CreateString(client_name.data(), client_name.size());
  const auto hello = wire::CreateHello(fbb, kProtocolVersion, name);
  return finish(fbb, 0, wire::Body::Hello, hello.Union());
}

std::vector<uint8_t> encode_generate(uint64_t request_id, const GenerateRequest& req) {
  size_t text_bytes = req.prompt_text.size();
  for (const ChatMessage& m : req.messages) text_bytes += m.role.size() + m.content.size() + 32;
  flatbuffers::FlatBufferBuilder fbb(1024 + text_bytes + 4 * req.prompt_ids.size());
  const auto model = string_or_null(fbb, req.model);
  const auto prompt_text = string_or_null(fbb, req.prompt_text);
  const auto prompt_ids = req.prompt_ids.empty() ? flatbuffers::Offset<flatbuffers::Vector<int32_t>>()
                                                 : fbb.CreateVector(req.prompt_ids);
  using StringVector = flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>;
  const auto stop = req.stop_strings.empty() ? flatbuffers::Offset<StringVector>()
                                             : fbb.CreateVectorOfStrings(req.stop_strings);
  const auto decoder = string_or_null(fbb, req.decoder);
  const auto options = string_or_null(fbb, req.decoder_options_json);
  const auto sampling = wire::CreateSampling(fbb, req.sampling.temperature, req.sampling.top_k, req.sampling.top_p,
                                             req.sampling.min_p, req.sampling.seed);
  std::vector<flatbuffers::Offset<wire::ChatMessage>> turns;
  for (const ChatMessage& m : req.messages)
    turns.push_back(wire::CreateChatMessage(fbb, fbb.CreateString(m.role), fbb.CreateString(m.content)));
  const auto messages = turns.empty() ? flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::ChatMessage>>>()
                                      : fbb.CreateVector(turns);
  const auto gen = wire::CreateGenerate(fbb, model, prompt_text, prompt_ids, req.max_tokens, sampling, stop, decoder,
                                        options, req.stream, req.keep_stop, messages);
  return finish(fbb, request_id, wire::Body::Generate, gen.Union());
}

std::vector<uint8_t> encode_cancel(uint64_t request_id) {
  flatbuffers::FlatBufferBuilder fbb(64);
  return finish(fbb, request_id, wire::Body::Cancel, wire::CreateCancel(fbb).Union());
}

std::vector<uint8_t> encode_status_request(uint64_t request_id) {
  flatbuffers::FlatBufferBuilder fbb(64);
  return finish(fbb, request_id, wire::Body::StatusRequest, wire::CreateStatusRequest(fbb).Union());
}

std::vector<uint8_t> encode_list_runs(uint64_t request_id, const RunsQuery& query) {
  flatbuffers::FlatBufferBuilder fbb(256);
  const auto decoder = string_or_null(fbb, query.decoder);
  const auto model = string_or_null(fbb, query.model);
  const auto list = wire::CreateListRuns(fbb, query.last, decoder, model, query.since_unix_ms);
  return finish(fbb, request_id, wire::Body::ListRuns, list.Union());
}

}  // namespace specd::clients
