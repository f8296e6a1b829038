// Drives specd's HTTP API with the official OpenAI Node.js client (a client no one here wrote).
// usage: node openai_client.mjs OPENAI_MODULE_DIR BASE_URL MODEL
// Prints one JSON object with what each call returned; the C++ test (tests/test_http.cpp) checks it.
import { createRequire } from 'node:module';

const [moduleDir, baseURL, model] = process.argv.slice(2);
const require = createRequire(moduleDir + '/');
const OpenAI = require('openai').default;
const client = new OpenAI({ baseURL, apiKey: 'test-key', maxRetries: 0, timeout: 60000 });
const out = {};

async function collect(stream, pick) {
  let text = '';
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) text += pick(c) ?? '';
  }
  return { text, usage, chunks };
}

const prompt = 'Once upon a time';
const c = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0 });
out.completion = { text: c.choices[0].text, finish_reason: c.choices[0].finish_reason, usage: c.usage, id: c.id };

const ng = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0, specd: { decoder: 'ngram' } });
out.completion_ngram = { text: ng.choices[0].text, decoder: ng.usage.specd.decoder };

const cs = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0, stream: true,
  stream_options: { include_usage: true } });
out.completion_stream = await collect(cs, (x) => x.text);

const messages = [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: 'Tell me about Lily.' }];
const ch = await client.chat.completions.create({ model, messages, max_completion_tokens: 16, temperature: 0 });
out.chat = { text: ch.choices[0].message.content, role: ch.choices[0].message.role, finish_reason: ch.choices[0].finish_reason,
  usage: ch.usage, object: ch.object };

const chs = await client.chat.completions.create({ model, messages, max_completion_tokens: 16, temperature: 0, stream: true,
  stream_options: { include_usage: true } });
out.chat_stream = await collect(chs, (x) => x.delta?.content);

try {
  await client.completions.create({ model: 'no-such-model', prompt, max_tokens: 4 });
  out.unknown_model = { status: 0 };
} catch (e) {
  out.unknown_model = { status: e.status, code: e.code, message: e.message };
}
try {
  await client.completions.create({ model, prompt, max_tokens: 4, temperature: 7 });
  out.bad_temperature = { status: 0 };
} catch (e) {
  out.bad_temperature = { status: e.status, param: e.param, message: e.message };
}

// An aborted stream: the daemon must cancel the run (its run-log row says "cancel").
const slow = await client.completions.create({ model, prompt, max_tokens: 400, temperature: 0, stream: true,
  specd: { decoder: 'misbehave', options: { mode: 'slow' } } });
let got = 0;
for await (const chunk of slow) {
  got += chunk.choices.length;
  if (got >= 2) {
    slow.controller.abort();
    break;
  }
}
out.aborted = { chunks: got, id: null };

const models = await client.models.list();
out.models = models.data.map((m) => m.id);
const one = await client.models.retrieve(model);
out.model = { id: one.id, object: one.object, owned_by: one.owned_by, specd: one.specd ?? null };
console.log(JSON.stringify(out));
