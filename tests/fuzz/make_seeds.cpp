// Writes the seed corpora that need an encoder: one file per message, as the real encoders make it,
// and small GGUF files from the real writer.
//   make_seeds DIR   →  DIR/frame/* (client → daemon, for frame_fuzz; prefixed by a split byte)
//                       DIR/client_frame/* (daemon → client, for client_frame_fuzz)
//                       DIR/gguf/* (gguf_fuzz)
// The committed frame corpora in tests/fuzz/corpus/ were made by it (rerun it after the protocol gains
// a message). GGUF seeds are model files and stay out of the tree: run_fuzz.sh writes them into the
// build folder with this program before each gguf run.
#include "clients/frame_reader.h"
#include "clients/message_encode.h"
#include "daemon/wire_encode.h"
#include "engine/gguf_writer.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace sc = specd::clients;
namespace sd = specd::daemon;

namespace {

// The targets read their first byte as the feed size, then the stream: 0x40 feeds 65 bytes a time.
void write_seed(const std::filesystem::path& dir, const std::string& name, const std::vector<uint8_t>& stream) {
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary);
  out.put(static_cast<char>(0x40));
  out.write(reinterpret_cast<const char*>(stream.data()), static_cast<std::streamsize>(stream.size()));
}

std::vector<uint8_t> framed(const std::vector<uint8_t>& flatbuffer) {
  std::vector<uint8_t> out;
  sc::append_frame(&out, flatbuffer);
  return out;
}

// A small LLaMA-shaped file: metadata of every scalar kind, string and numeric arrays, tensors of
// three weight types.
void write_gguf_seeds(const std::filesystem::path& dir) {
  namespace se = specd::engine;
  std::filesystem::create_directories(dir);
  se::GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.context_length", 128);
  w.set_u32("llama.embedding_length", 8);
  w.set_i32("llama.block_count", 1);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_u64("specd.seed.u64", 1);
  w.set_array_string("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xe2\x96\x81" "a"});
  w.set_array_f32("tokenizer.ggml.scores", {0.0f, 0.0f, 0.0f, -1.0f});
  w.set_array_i32("tokenizer.ggml.token_type", {2, 3, 3, 1});
  std::vector<uint8_t> f32(4 * 8 * 2, 0), f16(2 * 8 * 2, 0), q8(34 * 2, 0);
  (void)w.add_tensor("token_embd.weight", specd::GgmlType::F32, {8, 2}, f32);
  (void)w.add_tensor("output_norm.weight", specd::GgmlType::F16, {8, 2}, f16);
  (void)w.add_tensor("output.weight", specd::GgmlType::Q8_0, {32, 2}, q8);
  if (specd::Status st = w.write((dir / "small.gguf").string()); !st) std::fprintf(stderr, "make_seeds: %s\n", st.error().message.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  sc::GenerateRequest g;
  g.prompt_text = "Once upon a time";
  g.max_tokens = 16;
  g.stop_strings = {"Lily", "\n\n"};
  g.decoder = "ngram";
  g.decoder_options_json = R"({"k":"4"})";
  sc::GenerateRequest ids = g;
  ids.prompt_ids = {1, 403, 407};
  ids.sampling.temperature = 0.8f;
  ids.sampling.top_k = 40;
  sc::GenerateRequest chat = g;  // protocol 0.3: a conversation instead of a prompt
  chat.prompt_text.clear();
  chat.messages = {{"system", "You are terse."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Again"}};
  sc::RunsQuery q;
  q.last = 5;
  q.decoder = "ar";
  const std::vector<uint8_t> hello = framed(sc::encode_hello("make_seeds"));
  std::vector<uint8_t> session = hello;
  for (const auto& f : {framed(sc::encode_generate(1, g)), framed(sc::encode_cancel(1)),
                        framed(sc::encode_status_request(2)), framed(sc::encode_list_runs(3, q))})
    session.insert(session.end(), f.begin(), f.end());
  write_seed(dir / "frame", "hello", hello);
  write_seed(dir / "frame", "generate_text", framed(sc::encode_generate(1, g)));
  write_seed(dir / "frame", "generate_ids", framed(sc::encode_generate(7, ids)));
  write_seed(dir / "frame", "generate_chat", framed(sc::encode_generate(8, chat)));
  write_seed(dir / "frame", "cancel", framed(sc::encode_cancel(1)));
  write_seed(dir / "frame", "status", framed(sc::encode_status_request(2)));
  write_seed(dir / "frame", "list_runs", framed(sc::encode_list_runs(3, q)));
  write_seed(dir / "frame", "session", session);

  sd::WelcomeInfo w{"0.1.0", 1u << 20, 4096, 511};
  sd::DecodeResult r;
  r.tokens = {403, 407, 13};
  r.steps = 2;
  r.emitted_hist = {0, 1, 1};
  sd::StatusInfo s;
  s.daemon_version = "0.1.0";
  sd::ModelInfo model;
  model.name = "stories";
  model.path = "/models/stories260K.gguf";
  model.vocab = 512;
  model.ctx_len = 512;
  model.weight_bytes = 1u << 20;
  model.device = "cuda:0";
  model.device_memory_used = 1u << 21;
  model.device_memory_total = 1u << 22;
  model.summary = {"llama", 292800, 1185376, {{"Q8_0", 262144, 278528}, {"F32", 30656, 122624}}};
  model.chat_template = true;
  model.is_default = true;
  s.models.push_back(model);
  s.engine.decoders.push_back({"ar", "1.0", "autoregressive", "/plugins/ar.so", R"({"name":"ar","lossless":true,"options":[]})"});
  sd::RunRecord run;
  run.id = 42;
  run.model = "stories";
  run.decoder = "ar";
  run.decoder_options = "{}";
  run.accepted_hist = "[0,3]";
  run.finish_reason = "length";
  const std::vector<int32_t> tok = {403, 407};
  std::vector<uint8_t> stream = sd::encode_welcome(0, w);
  for (const auto& f : {sd::encode_token_event(1, tok, " the", 1), sd::encode_finished(1, r, 4, " the dog", 42)})
    stream.insert(stream.end(), f.begin(), f.end());
  write_seed(dir / "client_frame", "welcome", sd::encode_welcome(0, w));
  write_seed(dir / "client_frame", "token_event", sd::encode_token_event(1, tok, " the", 1));
  write_seed(dir / "client_frame", "finished", sd::encode_finished(1, r, 4, " the dog", 42));
  write_seed(dir / "client_frame", "status_model_summary", sd::encode_status(2, s));  // "status": the 0.2 shape
  write_seed(dir / "client_frame", "run_list", sd::encode_run_list(3, {run}, 1));
  write_seed(dir / "client_frame", "error", sd::encode_error(4, SPECD_E_KV_FULL, "kv cache full"));
  write_seed(dir / "client_frame", "session", stream);
  write_gguf_seeds(dir / "gguf");
  return 0;
}
