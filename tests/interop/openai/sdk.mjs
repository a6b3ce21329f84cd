// The official openai npm SDK as a client of the clawgrid brain gateway. Run by test_openai_sdk.c with
// GW_URL (http://127.0.0.1:PORT/v1) and GW_KEY; prints one line per check and exits non-zero on a failure.
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.GW_URL, apiKey: process.env.GW_KEY, maxRetries: 0, timeout: 20000 });
const msgs = [{ role: 'user', content: 'hello from the sdk' }];
const tools = [{
  type: 'function',
  function: {
    name: 'get_weather', description: 'Weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}];
let failed = 0;
function check(name, cond, detail) {
  console.log(`${cond ? 'ok' : 'FAIL'} ${name}${cond ? '' : ' ' + JSON.stringify(detail)}`);
  if (!cond) failed++;
}

// non-streamed
const r = await client.chat.completions.create({ model: 'fast-model', messages: msgs });
check('non-stream content', r.choices[0].message.content === 'w1 w2 w3 w4 w5 w6 ', r);
check('non-stream usage', r.usage && r.usage.completion_tokens === 6 && r.usage.total_tokens > 6, r.usage);
check('non-stream object', r.object === 'chat.completion' && r.choices[0].finish_reason === 'stop', r);

// streamed, with usage asked for
let text = '', usage = null, chunks = 0;
const s = await client.chat.completions.create({ model: 'fast-model', messages: msgs, stream: true,
  stream_options: { include_usage: true } });
for await (const c of s) {
  chunks++;
  if (c.choices.length && c.choices[0].delta.content) text += c.choices[0].delta.content;
  if (c.usage) usage = c.usage;
}
check('stream content', text === 'w1 w2 w3 w4 w5 w6 ', text);
check('stream usage', usage && usage.completion_tokens === 6, usage);

// streamed without usage: none arrives (it was forced upstream and stripped)
let sawUsage = false;
for await (const c of await client.chat.completions.create({ model: 'fast-model', messages: msgs, stream: true }))
  if (c.usage) sawUsage = true;
check('stream usage stripped', !sawUsage);

// tool calls, non-streamed and through the SDK's own stream assembly
const t = await client.chat.completions.create({ model: 'fast-model', messages: msgs, tools, tool_choice: 'auto' });
const call = t.choices[0].message.tool_calls?.[0];
check('tool call', call && call.function.name === 'get_weather' && JSON.parse(call.function.arguments).city === 'Paris'
  && t.choices[0].finish_reason === 'tool_calls', t.choices[0]);
const ts = client.chat.completions.stream({ model: 'fast-model', messages: msgs, tools });
const final = await ts.finalChatCompletion();
const scall = final.choices[0].message.tool_calls?.[0];
check('tool call streamed', scall && scall.id === 'call_double_1' && JSON.parse(scall.function.arguments).city === 'Paris',
  final.choices[0]);
// the tool result goes back as a tool message
const back = await client.chat.completions.create({ model: 'fast-model', tools, messages: [...msgs,
  { role: 'assistant', content: null, tool_calls: [scall] },
  { role: 'tool', tool_call_id: scall.id, content: '{"sky":"clear"}' }] });
check('tool result accepted', typeof back.choices[0].message.content === 'string' || back.choices[0].message.tool_calls, back);

// models
const models = [];
for await (const m of client.models.list()) models.push(m.id);
check('models', models.includes('fast-model') && models.includes('auto'), models);

// abort mid-stream: the gateway must cancel the upstream (checked by the C side)
const ac = new AbortController();
let got = 0, aborted = false;
try {
  const a = await client.chat.completions.create({ model: 'slow-model', messages: msgs, stream: true },
    { signal: ac.signal });
  for await (const c of a) {
    if (c.choices.length && c.choices[0].delta.content) got++;
    if (got === 2) ac.abort();
  }
} catch (e) {
  // depending on timing the SDK ends the iteration quietly or raises its abort error
  aborted = e instanceof OpenAI.APIUserAbortError || e.name === 'AbortError' || /abort/i.test(String(e));
}
aborted ||= ac.signal.aborted;
check('abort mid-stream', aborted && got >= 2 && got < 100, { got, aborted });

// an upstream that dies after the first tokens: the SDK sees an error, never a clean end
let partial = '', streamErr = null;
try {
  for await (const c of await client.chat.completions.create({ model: 'broken-model', messages: msgs, stream: true }))
    if (c.choices.length && c.choices[0].delta.content) partial += c.choices[0].delta.content;
} catch (e) {
  streamErr = e;
}
check('in-band error surfaces', streamErr !== null && partial === 'w1 w2 ', { partial, err: String(streamErr) });

// wrong key: a typed 401
try {
  await new OpenAI({ baseURL: process.env.GW_URL, apiKey: 'wrong', maxRetries: 0 }).chat.completions.create(
    { model: 'fast-model', messages: msgs });
  check('bad key refused', false, 'no error');
} catch (e) {
  check('bad key refused', e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === 'invalid_api_key',
    { status: e.status, code: e.code });
}

// a bad request: a typed 400 naming the field
try {
  await client.chat.completions.create({ model: 'fast-model', messages: [] });
  check('bad request refused', false, 'no error');
} catch (e) {
  check('bad request refused', e instanceof OpenAI.BadRequestError && /messages/.test(e.message), e.message);
}

process.exit(failed ? 1 : 0);
