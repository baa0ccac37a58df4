// padlock worker: owns the wasm Runtime so that loading and generating never block the page.
//
// Started by index.js as `new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })`.
// Protocol (page -> worker): { id, type, ... }; (worker -> page): { id, type: 'result' | 'error' |
// 'progress' | 'token', ... }. Errors keep the Rust side's stable `.code`.
//
//   { type: 'load', url, sha256, backend } fetch the GGUF (streamed, with progress) or take it from
//                                        this device's model cache, check its SHA-256 when given,
//                                        then Runtime.load; backend: 'auto' | 'webgpu' | 'cpu'
//   { type: 'load', bytes, sha256, backend } the same on bytes the page already has (transferred)
//   { type: 'chat', request }            Runtime.chat (or Memory.chat when request.personalization
//                                        .memory): streams { type: 'token', piece, tokenId,
//                                        explanation }, then the chat completion
//   { type: 'generate', prompt, options, useMemory } the one-prompt API (Runtime.generate / Memory.generate)
//   { type: 'info' } { type: 'cancel' } { type: 'unload' } { type: 'ping' }
//   { type: 'releaseCaches' }            frees the caches the last chat turn kept
//   { type: 'loadHead', name, url | bytes } rt.loadHead(name, bytes): a value head for preferences to name
//   { type: 'logits', ids }              Float32Array of logits after feeding ids (fresh context)
//   { type: 'memory', op, args }         memory[op](...args) on the preference memory (IndexedDB,
//                                        encrypted): list, add, remember, update, remove, profile,
//                                        setProfile, events, feedback, rebuild, active, suggest,
//                                        related, merge, export, import, putValueHead,
//                                        valueHeads, removeValueHead
//   { type: 'forget' }                   deletes the memory (other tabs close theirs first) and the
//                                        kept models
// Unprompted (worker -> page): { type: 'memory-closed' } when another tab forgot the memory.
//
// Models are kept on this device in the Cache API ("padlock-models", see models.js): under their
// SHA-256 when one is given, else under their URL; the next load makes no network request.

// Static imports, so that bundlers (Vite, webpack 5, esbuild) follow them and copy the wasm
// file that padlock.js finds with `new URL('padlock_bg.wasm', import.meta.url)`.
import init, { Runtime, Memory, inspectModel } from './padlock.js';
import { MODEL_CACHE, modelKey } from './models.js';

let runtime = null; // the loaded Runtime
let busy = null; // name of the running operation, if any
let memory = null; // the opened Memory, on first use
let memoryOpening = null; // the Memory.open in flight, so concurrent calls share one connection
const MEMORY_NAME = 'padlock-memory';
const MEMORY_OPS = new Set(['list', 'add', 'remember', 'update', 'remove', 'profile', 'setProfile', 'events',
  'feedback', 'rebuild', 'active', 'suggest', 'related', 'merge', 'export', 'import', 'putValueHead', 'valueHeads', 'removeValueHead']);

class CodedError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function serializeError(err) {
  if (err && typeof err === 'object') {
    return {
      code: typeof err.code === 'string' && err.code ? err.code : 'INTERNAL',
      message: String(err.message ?? err),
      name: err.name || 'Error',
    };
  }
  // wasm-bindgen can reject with a plain string or JsValue.
  return { code: 'INTERNAL', message: String(err), name: 'Error' };
}

let initialized = null;
/** The wasm memory's size once instantiated: static data and the first heap. */
let baseMemoryBytes = 0;

/** The wasm module, instantiated once. */
async function ensureWasm() {
  initialized ??= init().then((wasm) => {
    baseMemoryBytes = wasm.memory?.buffer.byteLength ?? 0;
    return { Runtime, Memory };
  });
  return initialized;
}

/** The most a 32-bit WebAssembly memory holds. */
const WASM_MEMORY_LIMIT = 4 * 1024 ** 3;
/** What a loaded model needs beyond its file before its first answer (caches, activations). */
const LOAD_HEADROOM = 256 * 1024 ** 2;

/** What wasm memory can give a model file beside what is there and what answering needs. */
function wasmRoom() {
  return WASM_MEMORY_LIMIT - baseMemoryBytes - LOAD_HEADROOM;
}

/** Rejects with MEMORY_LIMIT, before a byte is copied, a model file the wasm memory cannot hold. */
function checkModelFits(bytes, what) {
  const room = wasmRoom();
  if (bytes > room) {
    throw new CodedError('MEMORY_LIMIT', `${what} is ${mb(bytes)} MB; WebAssembly's memory holds at most about ${mb(room)} MB `
      + 'of model beside what answering needs, so it cannot load here; nothing was changed');
  }
}

const mb = (n) => Math.round(n / 1024 ** 2);

/** How much of a file is read for its header first; a longer header is read in doubling steps. */
const HEADER_PROBE = 4 * 1024 ** 2;
/** The context planned for when the page does not say (capped by the model's own). */
const DEFAULT_CONTEXT = 4096;

/**
 * Checks a model from the header at the start of `prefix` (a file of `fileLength` bytes): that
 * padlock reads it (the typed errors loading gives), and that its weights and the keys and
 * values of `contextLength` positions fit in wasm memory, and its largest tensor in one
 * WebGPU binding when the page asked for WebGPU. Resolves to the summary, or to null when the
 * prefix ends inside the header (read more and ask again).
 */
async function checkHeader(prefix, fileLength, { contextLength, backend }, what) {
  let summary;
  try {
    summary = inspectModel(prefix, fileLength);
  } catch (e) {
    if (e?.code === 'GGUF_TRUNCATED' && prefix.length < fileLength) return null;
    throw e;
  }
  const positions = Math.min(contextLength || DEFAULT_CONTEXT, summary.contextLength);
  const kv = summary.kvBytesPerPosition * positions;
  const room = wasmRoom();
  if (fileLength + kv > room) {
    throw new CodedError('MEMORY_LIMIT', `${what} needs ${mb(fileLength)} MB for its weights and ${mb(kv)} MB for the keys `
      + `and values of a ${positions}-token context; WebAssembly's memory holds about ${mb(room)} MB here, so it `
      + 'cannot load (a shorter contextLength, or a smaller model, may fit); nothing was changed');
  }
  if (backend === 'webgpu' && self.navigator?.gpu) {
    const adapter = await self.navigator.gpu.requestAdapter().catch(() => null);
    const limit = adapter ? Math.min(adapter.limits.maxStorageBufferBindingSize, adapter.limits.maxBufferSize) : Infinity;
    if (summary.largestTensorBytes > limit) {
      throw new CodedError('GPU_LIMITS', `${what} has a tensor of ${mb(summary.largestTensorBytes)} MB; this GPU binds at `
        + `most ${mb(limit)} MB at once (use the CPU backend); nothing was changed`);
    }
  }
  return summary;
}

/** `checkHeader` on a whole file the page gave (reading as little of it as the header needs). */
async function checkFileHeader(bytes, plan, what) {
  for (let n = HEADER_PROBE; ; n *= 2) {
    const summary = await checkHeader(bytes.subarray(0, Math.min(n, bytes.length)), bytes.length, plan, what);
    if (summary) return summary;
  }
}

/**
 * Streams `url` into one Uint8Array, reporting { phase: 'download', loaded, total, fraction }.
 * Its header is checked (`checkHeader`) as soon as it has arrived (with an unknown length, at
 * the end), and the download stopped there when the model cannot run here.
 */
async function download(url, progress, plan) {
  let resp;
  try {
    resp = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
  } catch (e) {
    throw new CodedError('MODEL_FETCH_FAILED', `could not fetch the model at ${url}: ${e.message || e}`);
  }
  if (!resp.ok) throw new CodedError('MODEL_FETCH_FAILED', `could not fetch the model at ${url}: HTTP ${resp.status}`);
  const total = Number(resp.headers.get('Content-Length')) || 0;
  checkModelFits(total, `the model at ${url}`);
  if (!resp.body) {
    const buf = new Uint8Array(await resp.arrayBuffer());
    progress({ phase: 'download', loaded: buf.length, total: buf.length, fraction: 1 });
    await checkFileHeader(buf, plan, `the model at ${url}`);
    return buf;
  }
  const reader = resp.body.getReader();
  let out = total > 0 ? new Uint8Array(total) : null;
  const chunks = [];
  let loaded = 0;
  let lastReport = 0;
  // With a known length, the header is checked once the first HEADER_PROBE bytes are in;
  // without one, when the whole file is.
  let headerAt = total > 0 ? Math.min(HEADER_PROBE, total) : Infinity;
  let header = null;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (out && loaded + value.length <= out.length) out.set(value, loaded);
    else {
      if (out) { chunks.push(out.subarray(0, loaded)); out = null; }
      chunks.push(value);
    }
    loaded += value.length;
    try {
      checkModelFits(loaded, `the model at ${url}`);
      if (!header && out && loaded >= headerAt) {
        header = await checkHeader(out.subarray(0, loaded), total, plan, `the model at ${url}`);
        headerAt = Math.min(2 * headerAt, total);
      }
    } catch (e) {
      reader.cancel().catch(() => {});
      throw e;
    }
    const now = performance.now();
    if (now - lastReport > 50) {
      lastReport = now;
      progress({ phase: 'download', loaded, total, fraction: total ? Math.min(1, loaded / total) : 0 });
    }
  }
  if (!out) {
    out = new Uint8Array(loaded);
    let off = 0;
    for (const c of chunks) { out.set(c, off); off += c.length; }
  } else if (loaded !== out.length) {
    out = out.subarray(0, loaded);
  }
  progress({ phase: 'download', loaded, total: loaded, fraction: 1 });
  if (!header) await checkFileHeader(out, plan, `the model at ${url}`);
  return out;
}

/** The lowercase hex SHA-256 of `bytes`. */
async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Rejects with MODEL_INTEGRITY unless `bytes` hash to `sha256` (when one is given). */
async function verify(bytes, sha256, progress) {
  if (!sha256) return;
  progress({ phase: 'verify', loaded: 0, total: bytes.length, fraction: 0 });
  const actual = await sha256Hex(bytes);
  progress({ phase: 'verify', loaded: bytes.length, total: bytes.length, fraction: 1 });
  if (actual !== sha256.toLowerCase()) {
    throw new CodedError('MODEL_INTEGRITY', `the model's SHA-256 is ${actual}, not the ${sha256} asked for; nothing was kept`);
  }
}

function isQuotaError(e) {
  return e && (e.name === 'QuotaExceededError' || e.code === 22 || /quota/i.test(String(e.message)));
}

/**
 * The model from this device's cache, else downloaded, checked and then kept. A cached copy
 * is checked too (a damaged one is dropped and fetched again). A full quota rejects with
 * QUOTA_EXCEEDED and keeps what was already stored.
 */
async function cachedDownload(url, sha256, progress, plan) {
  const key = modelKey({ url, sha256 });
  const cache = self.caches ? await self.caches.open(MODEL_CACHE).catch(() => null) : null;
  const hit = cache ? await cache.match(key).catch(() => null) : null;
  if (hit) {
    const bytes = new Uint8Array(await hit.arrayBuffer());
    progress({ phase: 'cache', loaded: bytes.length, total: bytes.length, fraction: 1 });
    try {
      await verify(bytes, sha256, progress);
      return { bytes, cached: true };
    } catch (e) {
      await cache.delete(key).catch(() => {});
    }
  }
  const bytes = await download(url, progress, plan);
  await verify(bytes, sha256, progress);
  if (cache) {
    const headers = { 'Content-Type': 'application/octet-stream', 'X-Padlock-Url': url, 'X-Padlock-Sha256': sha256 || '' };
    try {
      await cache.put(key, new Response(bytes, { headers }));
    } catch (e) {
      if (isQuotaError(e)) {
        throw new CodedError('QUOTA_EXCEEDED', `the model (${bytes.length} bytes) does not fit in this site's storage quota; the models kept before are still there`);
      }
      console.warn(`padlock: the model was not kept on this device (${e.message || e})`);
    }
  }
  return { bytes, cached: false };
}

async function openMemory() {
  if (memory && !memory.closed) return memory;
  memoryOpening ??= (async () => {
    try {
      const { Memory } = await ensureWasm();
      memory = await Memory.open(MEMORY_NAME, () => self.postMessage({ id: null, type: 'memory-closed' }));
      return memory;
    } finally {
      memoryOpening = null;
    }
  })();
  return memoryOpening;
}

function toPlain(value) {
  // info() may return a Map (serde-wasm-bindgen) or a plain object; normalise for postMessage.
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [k, toPlain(v)]));
  if (Array.isArray(value)) return value.map(toPlain);
  return value;
}

function normalizeResult(r) {
  r = toPlain(r);
  if (!r || typeof r !== 'object') return r;
  const out = { ...r };
  for (const k of ['promptIds', 'generatedIds', 'sequenceRewards']) if (out[k] && !Array.isArray(out[k])) out[k] = Array.from(out[k]);
  return out;
}

async function handle(msg, reply) {
  const { type } = msg;
  switch (type) {
    case 'load': {
      if (busy) throw new CodedError('BUSY', `the runtime is busy (${busy})`);
      busy = 'load';
      try {
        const progress = (p) => reply({ type: 'progress', ...p });
        const { Runtime } = await ensureWasm();
        const plan = { contextLength: msg.contextLength, backend: msg.backend || 'auto' };
        let bytes;
        let cached = false;
        if (msg.bytes) {
          bytes = new Uint8Array(msg.bytes);
          checkModelFits(bytes.length, 'the model file');
          await verify(bytes, msg.sha256, progress);
        } else {
          ({ bytes, cached } = await cachedDownload(msg.url, msg.sha256, progress, plan));
        }
        // A download checked the header as it arrived; bytes from the page or the cache here.
        if (msg.bytes || cached) await checkFileHeader(bytes, plan, msg.bytes ? 'the model file' : `the model at ${msg.url}`);
        if (runtime) { try { runtime.free?.(); } catch {} runtime = null; }
        progress({ phase: 'load', fraction: 0, loaded: 0, total: bytes.length });
        const t0 = performance.now();
        runtime = await Runtime.load(bytes, (fraction) => progress({ phase: 'load', fraction: Number(fraction) }),
          { backend: msg.backend || 'auto' });
        const loadMs = performance.now() - t0;
        progress({ phase: 'load', fraction: 1 });
        return { info: toPlain(runtime.info()), bytes: bytes.length, loadMs, cached };
      } finally {
        busy = null;
      }
    }
    case 'info':
      if (!runtime) throw new CodedError('NOT_LOADED', 'no model is loaded');
      return toPlain(runtime.info());
    case 'generate': {
      if (!runtime) throw new CodedError('NOT_LOADED', 'no model is loaded');
      if (busy) throw new CodedError('BUSY', `the runtime is busy (${busy})`);
      busy = 'generate';
      try {
        const onToken = (piece, tokenId, explanation) =>
          reply({ type: 'token', piece, tokenId, explanation: explanation ? toPlain(explanation) : undefined });
        const t0 = performance.now();
        const r = msg.useMemory
          ? await (await openMemory()).generate(runtime, String(msg.prompt), msg.options || {}, onToken)
          : await runtime.generate(String(msg.prompt), msg.options || {}, onToken);
        return { ...normalizeResult(r), wallMs: performance.now() - t0 };
      } finally {
        busy = null;
      }
    }
    case 'chat': {
      if (!runtime) throw new CodedError('NOT_LOADED', 'no model is loaded');
      if (busy) throw new CodedError('BUSY', `the runtime is busy (${busy})`);
      busy = 'generate';
      try {
        const request = msg.request;
        const onToken = (piece, tokenId, explanation) =>
          reply({ type: 'token', piece, tokenId, explanation: explanation ? toPlain(explanation) : undefined });
        const memoryChat = request && typeof request === 'object' && request.personalization?.memory === true;
        const r = memoryChat
          ? await (await openMemory()).chat(runtime, request, onToken)
          : await runtime.chat(request, onToken);
        return toPlain(r);
      } finally {
        busy = null;
      }
    }
    case 'logits': {
      if (!runtime) throw new CodedError('NOT_LOADED', 'no model is loaded');
      if (busy) throw new CodedError('BUSY', `the runtime is busy (${busy})`);
      busy = 'logits';
      try {
        const logits = await runtime.logits(new Uint32Array(msg.ids));
        // Always a copy: transferring a view on wasm memory would detach the module's memory.
        return logits instanceof Float32Array ? logits.slice() : Float32Array.from(logits);
      } finally {
        busy = null;
      }
    }
    case 'loadHead': {
      if (!runtime) throw new CodedError('NOT_LOADED', 'no model is loaded');
      let bytes = msg.bytes ? new Uint8Array(msg.bytes) : null;
      if (!bytes) {
        const resp = await fetch(msg.url, { credentials: 'same-origin' }).catch((e) => {
          throw new CodedError('MODEL_FETCH_FAILED', `could not fetch the value head at ${msg.url}: ${e.message || e}`);
        });
        if (!resp.ok) throw new CodedError('MODEL_FETCH_FAILED', `could not fetch the value head at ${msg.url}: HTTP ${resp.status}`);
        bytes = new Uint8Array(await resp.arrayBuffer());
      }
      return toPlain(runtime.loadHead(String(msg.name), bytes));
    }
    case 'releaseCaches':
      if (!runtime) throw new CodedError('NOT_LOADED', 'no model is loaded');
      if (busy) throw new CodedError('BUSY', `the runtime is busy (${busy})`);
      return { released: runtime.releaseCaches() };
    case 'cancel':
      if (runtime) runtime.cancel();
      return { cancelled: busy === 'generate' };
    case 'unload':
      if (busy) throw new CodedError('BUSY', `the runtime is busy (${busy})`);
      if (runtime) { try { runtime.free?.(); } catch {} runtime = null; }
      return { unloaded: true };
    case 'memory': {
      if (!MEMORY_OPS.has(msg.op)) throw new CodedError('BAD_REQUEST', `unknown memory operation ${JSON.stringify(msg.op)}`);
      const m = await openMemory();
      return toPlain(await m[msg.op](...(msg.args || [])));
    }
    case 'forget': {
      const m = await openMemory();
      await m.forget();
      memory = null;
      const modelCacheDeleted = self.caches ? await self.caches.delete(MODEL_CACHE) : false;
      return { forgotten: true, modelCacheDeleted };
    }
    case 'ping':
      return { pong: true, crossOriginIsolated: self.crossOriginIsolated, webgpu: !!self.navigator?.gpu };
    default:
      throw new CodedError('BAD_REQUEST', `unknown request type ${JSON.stringify(type)}`);
  }
}

// After a WebAssembly trap (a panic, memory exhausted) the instance's state is undefined: this
// worker answers nothing more but WORKER_CRASHED, and the page (index.js) starts a new one.
let trapped = null;

function trapError(err) {
  return { code: 'WORKER_CRASHED', name: 'Error', fatal: true,
    message: `the engine stopped on a WebAssembly trap (${err?.message || err}); it restarts with the model from this device's cache` };
}

self.onmessage = async (event) => {
  const msg = event.data || {};
  const id = msg.id;
  const reply = (m, transfer) => self.postMessage({ id, ...m }, transfer || []);
  if (trapped) {
    reply({ type: 'error', error: trapError(trapped) });
    return;
  }
  try {
    const result = await handle(msg, reply);
    const transfer = result instanceof Float32Array ? [result.buffer] : [];
    reply({ type: 'result', result }, transfer);
  } catch (err) {
    if (err instanceof WebAssembly.RuntimeError) {
      trapped = err;
      reply({ type: 'error', error: trapError(err) });
    } else {
      reply({ type: 'error', error: serializeError(err) });
    }
  }
};
