// Side-by-side decode speed: padlock (this crate, wasm) vs @wllama/wllama 3.8.1 (llama.cpp, wasm).
// One page, one model file fetched once, the same prompt, greedy decoding, one thread each, CPU.
// Sets window.benchResult (or window.benchError) when done; scripts/bench-browser.mjs reads it.
//
// What is measured:
// - padlock: r.decodeTokensPerSecond from Runtime.generate (decode only, prefill excluded).
// - wllama: timings.predicted_per_second from createChatCompletion (llama.cpp's own decode timer,
//   prefill excluded), with ignore_eos so it always decodes `tokens` tokens.
// - both: a JS-clock figure, (tokens - 1) / (time of last token - time of first token) as streamed
//   to the page, which includes the worker round trip.
import { Engine } from 'padlock-llm';

const WLLAMA_ESM = '/node_modules/@wllama/wllama/esm/index.js';
const WLLAMA_WASM = '/node_modules/@wllama/wllama/esm/wasm/wllama.wasm';
const q = new URLSearchParams(location.search);
const cfg = {
  model: q.get('model') || '/models/SmolLM2-135M-Instruct.Q4_1.gguf',
  prompt: q.get('prompt') || 'Write a long, detailed story about a lighthouse keeper who finds a message in a bottle.',
  tokens: Number(q.get('tokens') || 128),
  warmup: Number(q.get('warmup') ?? 8),
  nCtx: Number(q.get('n_ctx') || 1024),
  only: q.get('only') || 'both',
  order: q.get('order') || 'wllama,padlock',
  wllamaLog: q.get('wllama_log') === '1',
  // padlock's backends to run, in order: 'cpu' (the peer of wllama), 'webgpu'.
  backends: (q.get('backends') || 'cpu').split(','),
};

const $ = (id) => document.getElementById(id);
const log = (...a) => {
  const line = a.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(' ');
  $('out').textContent += line + '\n';
  console.log('[bench]', line);
};
const status = (s) => { $('status').textContent = s; };
const round = (x, d = 2) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : null);

function jsRate(times) {
  if (times.length < 2) return null;
  return (times.length - 1) / ((times[times.length - 1] - times[0]) / 1000);
}

async function fetchModel() {
  status(`fetching ${cfg.model}…`);
  const resp = await fetch(cfg.model);
  if (!resp.ok) throw new Error(`cannot fetch ${cfg.model}: HTTP ${resp.status}`);
  const buf = await resp.arrayBuffer();
  log(`model: ${cfg.model} (${buf.byteLength} bytes)`);
  return buf;
}

async function benchWllama(buf) {
  status('wllama: loading…');
  const { Wllama } = await import(WLLAMA_ESM);
  const wllama = new Wllama({ default: WLLAMA_WASM },
    cfg.wllamaLog ? {} : { suppressNativeLog: true, logger: quietLogger() });
  const t0 = performance.now();
  await wllama.loadModel([new Blob([buf])], { n_ctx: cfg.nCtx, n_threads: 1, n_gpu_layers: 0, seed: 42 });
  const loadS = (performance.now() - t0) / 1000;
  const threads = wllama.getNumThreads();
  log(`wllama: loaded in ${loadS.toFixed(2)} s, threads=${threads}, multithread=${wllama.isMultithread()}`);
  const run = async (maxTokens) => {
    const times = [];
    let last = null;
    let text = '';
    await wllama.createChatCompletion({
      messages: [{ role: 'user', content: cfg.prompt }],
      max_tokens: maxTokens,
      temperature: 0,
      top_k: 1,
      penalty_repeat: 1.0,
      ignore_eos: true,
      seed: 42,
      cache_prompt: false,
      stream: true,
      onData: (chunk) => {
        const piece = chunk.choices?.[0]?.delta?.content;
        if (piece) { times.push(performance.now()); text += piece; }
        last = chunk;
      },
    });
    return { times, text, timings: last?.timings || null, usage: last?.usage || null };
  };
  if (cfg.warmup > 0) { status('wllama: warm-up…'); await run(cfg.warmup); }
  status(`wllama: generating ${cfg.tokens} tokens…`);
  const r = await run(cfg.tokens);
  await wllama.exit();
  const t = r.timings || {};
  return {
    runtime: 'wllama',
    version: '3.8.1',
    threads,
    decodeTokensPerSecond: round(t.predicted_per_second),
    jsTokensPerSecond: round(jsRate(r.times)),
    prefillTokensPerSecond: round(t.prompt_per_second),
    promptTokens: t.prompt_n ?? r.usage?.prompt_tokens ?? null,
    generatedTokens: t.predicted_n ?? r.usage?.completion_tokens ?? r.times.length,
    loadSeconds: round(loadS),
    text: r.text,
  };
}

async function benchPadlock(buf, backend) {
  status(`padlock (${backend}): loading…`);
  const client = new Engine();
  try {
    const t0 = performance.now();
    const { info } = await client.load(buf.slice(0), () => {}, { backend });
    const loadS = (performance.now() - t0) / 1000;
    log(`padlock: loaded in ${loadS.toFixed(2)} s`, info);
    const run = async (maxTokens) => {
      const times = [];
      const r = await client.generate(cfg.prompt, { maxTokens, greedy: true, repetitionPenalty: 1.0, seed: 42 },
        () => times.push(performance.now()));
      return { r, times };
    };
    if (cfg.warmup > 0) { status('padlock: warm-up…'); await run(cfg.warmup); }
    status(`padlock: generating ${cfg.tokens} tokens…`);
    const { r, times } = await run(cfg.tokens);
    return {
      runtime: backend === 'cpu' ? 'padlock' : `padlock (${backend})`,
      threads: 1,
      backend: info?.backend,
      kernel: info?.kernel,
      decodeTokensPerSecond: round(Number(r.decodeTokensPerSecond)),
      jsTokensPerSecond: round(jsRate(times)),
      prefillTokensPerSecond: round(Number(r.prefillTokensPerSecond)),
      promptTokens: r.promptIds?.length ?? null,
      generatedTokens: r.generatedIds?.length ?? times.length,
      stopReason: r.stopReason,
      loadSeconds: round(loadS),
      text: r.text,
    };
  } finally {
    client.terminate();
  }
}

function quietLogger() {
  return { debug: () => {}, log: () => {}, warn: (...a) => console.warn(...a), error: (...a) => console.error(...a) };
}

function commonPrefix(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function row(r) {
  const tr = document.createElement('tr');
  for (const v of [r.runtime, r.decodeTokensPerSecond, r.jsTokensPerSecond, r.prefillTokensPerSecond, r.generatedTokens, r.loadSeconds]) {
    const td = document.createElement('td');
    td.textContent = v ?? '–';
    tr.append(td);
  }
  $('table').tBodies[0].append(tr);
  $('table').hidden = false;
}

async function main() {
  $('run').disabled = true;
  $('out').textContent = '';
  $('table').tBodies[0].textContent = '';
  try {
    const buf = await fetchModel();
    const result = {
      page: 'bench',
      crossOriginIsolated: self.crossOriginIsolated,
      userAgent: navigator.userAgent,
      hardwareConcurrency: navigator.hardwareConcurrency,
      prompt: cfg.prompt,
      tokens: cfg.tokens,
      greedy: true,
    };
    for (const name of cfg.order.split(',')) {
      if (cfg.only !== 'both' && cfg.only !== name) continue;
      const runs = name === 'wllama' ? [[name, () => benchWllama(buf)]]
        : cfg.backends.map((b) => [b === 'cpu' ? 'padlock' : `padlock_${b}`, () => benchPadlock(buf, b)]);
      for (const [key, bench] of runs) {
        const r = await bench();
        result[key] = r;
        row(r);
        log(`${key}:`, { ...r, text: r.text.slice(0, 160) });
      }
    }
    if (result.padlock && result.padlock_webgpu) {
      const g = result.padlock_webgpu;
      const c = result.padlock;
      result.webgpuOverCpu = { decode: round(g.decodeTokensPerSecond / c.decodeTokensPerSecond, 3),
        prefill: round(g.prefillTokensPerSecond / c.prefillTokensPerSecond, 3) };
      log('padlock webgpu / cpu:', result.webgpuOverCpu);
    }
    if (result.wllama && result.padlock) {
      const p = result.padlock;
      const w = result.wllama;
      result.ratio = round(p.decodeTokensPerSecond / w.decodeTokensPerSecond, 3); // padlock / wllama
      result.ratioJsClock = round(p.jsTokensPerSecond / w.jsTokensPerSecond, 3);
      result.sameTextChars = commonPrefix(p.text, w.text);
      log(`padlock / wllama decode speed: ${result.ratio} (JS clock: ${result.ratioJsClock}); ` +
        `identical text for the first ${result.sameTextChars} characters`);
    }
    status('done');
    window.benchResult = result;
  } catch (err) {
    status('failed');
    log(`ERROR [${err.code || err.name}] ${err.message}`);
    window.benchError = { code: err.code || null, message: String(err.message || err), stack: String(err.stack || '') };
  } finally {
    $('run').disabled = false;
  }
}

$('run').addEventListener('click', main);
if (q.get('auto') !== '0') main();
