// The anchor of bench_model.sh: node-llama-cpp 3.21.1 (prebuilt CPU binaries, no build, no GPU) on the same
// GGUF, the same prompt, greedy, 64 tokens, at 1 and 4 concurrent sequences. One JSON object per line.
import path from "node:path";
import { pathToFileURL } from "node:url";

const [model, root, rounds = "5"] = process.argv.slice(2);
const nlc = await import(pathToFileURL(path.join(root, "third_party/llama/node_modules/node-llama-cpp/dist/index.js")).href);
const { getLlama, LlamaChatSession } = nlc;
const MAXTOK = 64, N = Number(rounds);
// The same thread count as the embedded backend picks on a small host (1; see docs/models.md).
const threads = Number(process.env.BENCH_THREADS || 1);

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const t0 = performance.now();
const m = await llama.loadModel({ modelPath: model });
const ctx = await m.createContext({ sequences: 4, contextSize: 1024, threads, batchSize: 512 });
console.log(JSON.stringify({ engine: "node-llama-cpp", load_ms: +(performance.now() - t0).toFixed(1) }));

async function one() {
  const seq = ctx.getSequence();
  const session = new LlamaChatSession({ contextSequence: seq });
  const start = performance.now();
  let first = 0, tokens = 0;
  await session.prompt("Write a short story about a robot.", {
    maxTokens: MAXTOK, temperature: 0,
    onToken: (t) => { if (!first) first = performance.now(); tokens += t.length; },
  });
  const end = performance.now();
  session.dispose(); seq.dispose();
  return { ttft: first - start, lat: end - start, tokens };
}

await one(); // warm-up
for (const conc of [1, 4]) {
  let ttft = 0, tps = 0, lat = 0;
  for (let i = 0; i < N; i++) {
    const s = performance.now();
    const rs = await Promise.all(Array.from({ length: conc }, one));
    const wall = (performance.now() - s) / 1000;
    ttft += rs.reduce((a, r) => a + r.ttft, 0) / conc;
    lat += rs.reduce((a, r) => a + r.lat, 0) / conc;
    tps += rs.reduce((a, r) => a + r.tokens, 0) / wall;
  }
  console.log(JSON.stringify({ engine: "node-llama-cpp", concurrency: conc, ttft_ms: +(ttft / N).toFixed(2),
    tokens_per_s: +(tps / N).toFixed(1), latency_64_ms: +(lat / N).toFixed(1) }));
}
await ctx.dispose(); await m.dispose();
