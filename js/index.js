// padlock-llm: on-device personalized chat. The engine runs in its own Web Worker (worker.js);
// this module is what a page imports.
//
//   import { createEngine } from 'padlock-llm';
//   const engine = await createEngine({ model: '/models/SmolLM2-135M-Instruct.Q4_1.gguf',
//                                       onProgress: ({ phase, loaded, total }) => {} });
//   const r = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }] });
//   for await (const chunk of await engine.chat.completions.create({ ...request, stream: true })) {}
//
// Requests and results are the Rust types' (src/chat.rs, src/web/chat.rs); index.d.ts says them
// in TypeScript. Every rejection is a PadlockError with a stable string `.code` (the Rust side's,
// or one of MODEL_FETCH_FAILED, MODEL_INTEGRITY, QUOTA_EXCEEDED, NOT_LOADED, BUSY,
// WORKER_CRASHED, TERMINATED); an aborted request rejects with a DOMException named AbortError.

import { listModels, deleteModel } from './models.js';

export { listModels, deleteModel };

/** The largest memory export an import reads (the Rust side's MAX_IMPORT_BYTES). */
const MAX_IMPORT_CHARS = 256 * 1024 * 1024;

/** What an export without a passphrase gives away (memory.export warns with it). */
const UNSEALED_EXPORT_WARNING = 'padlock: this memory export has no passphrase: it holds every preference and every '
  + 'feedback prompt and answer in plain text. Pass { passphrase } to seal it.';

export class PadlockError extends Error {
  constructor({ code, message, name }) {
    super(message);
    this.code = code;
    if (name && name !== 'Error') this.rustName = name;
  }
  get name() {
    return 'PadlockError';
  }
}

/**
 * Starts the engine's worker and loads a model. `options`: { model (a URL, or an ArrayBuffer /
 * Uint8Array / Blob / File), sha256 (checked before use; the key the model is kept under),
 * backend ('auto' | 'webgpu' | 'cpu'), onProgress({ phase, loaded, total, fraction }),
 * persist (ask the browser not to evict the kept model; default true), contextLength (the
 * context to plan memory for; see Engine.load) }.
 */
export async function createEngine(options = {}) {
  const { model, sha256, backend = 'auto', contextLength, onProgress = () => {}, persist = true, ...rest } = options;
  const unknown = Object.keys(rest);
  if (unknown.length) throw new PadlockError({ code: 'INVALID_ARGUMENT', message: `createEngine: unknown option ${unknown.map((k) => JSON.stringify(k)).join(', ')}` });
  if (model === undefined) throw new PadlockError({ code: 'INVALID_ARGUMENT', message: 'createEngine: `model` (a URL or the file\'s bytes) is required' });
  if (persist && typeof navigator !== 'undefined' && navigator.storage?.persist) {
    navigator.storage.persist().catch(() => {});
  }
  const engine = new Engine();
  try {
    await engine.load(model, onProgress, { backend, sha256, contextLength });
  } catch (e) {
    engine.terminate();
    throw e;
  }
  return engine;
}

/** The engine: a model in its own worker. */
export class Engine {
  constructor() {
    this.nextId = 1;
    this.pending = new Map(); // id -> { resolve, reject, onEvent }
    this.#startWorker();
    // What the last load was, to load again in a new worker after a crash (URL sources only:
    // bytes the page handed over are not kept twice).
    this.lastLoad = null;
    // The reload in progress after a crash; calls wait for it.
    this.restarting = null;
    /** How many times the worker was started again after a crash. */
    this.restarts = 0;
    this.loaded = false;
    this.lastInfo = null;
    this.onMemoryClosed = null;
    /** OpenAI-style chat completions: `chat.completions.create(request)`. */
    this.chat = { completions: { create: (request) => this.#create(request) } };
    // memory.list(), memory.add(text, options), ... : the worker's Memory, by name.
    this.memory = new Proxy({}, {
      // Not a thenable: `await engine.memory` must not call the worker.
      get: (_, op) => (typeof op === 'string' && op !== 'then' ? (...args) => {
        if (op === 'export' && !args[0]?.passphrase) console.warn(UNSEALED_EXPORT_WARNING);
        // Checked here too: a huge file would be copied into the worker and the wasm memory first.
        if (op === 'import' && typeof args[0] === 'string' && args[0].length > MAX_IMPORT_CHARS) {
          return Promise.reject(new PadlockError({ code: 'INVALID_IMPORT', message: `the file is larger than ${MAX_IMPORT_CHARS} characters` }));
        }
        return this.#call('memory', { op, args });
      } : undefined),
    });
  }

  #onMessage(msg) {
    if (msg.type === 'memory-closed') {
      try { this.onMemoryClosed?.(); } catch (err) { console.error('onMemoryClosed threw', err); }
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    if (msg.type === 'result') {
      this.pending.delete(msg.id);
      p.resolve(msg.result);
    } else if (msg.type === 'error') {
      this.pending.delete(msg.id);
      p.reject(new PadlockError(msg.error));
      // A load that crashed is not tried again (it would crash again).
      if (msg.error?.fatal) this.#restart(msg.error.message, p.type !== 'load');
    } else if (p.onEvent) {
      try {
        p.onEvent(msg);
      } catch (err) {
        console.error('padlock callback threw', err);
      }
    }
  }

  #startWorker() {
    // Written out in full: this is the pattern bundlers recognise and bundle as a worker.
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'padlock' });
    this.worker.onmessage = (e) => this.#onMessage(e.data);
    this.worker.onerror = (e) => {
      e.preventDefault?.();
      this.#restart(`the padlock worker failed: ${e.message || 'unknown error'}`);
    };
    this.worker.onmessageerror = () => this.#failAll('WORKER_CRASHED', 'a message from the worker could not be read');
  }

  /**
   * A crashed worker (a WebAssembly trap, or an uncaught error) is ended and a new one started;
   * the calls in flight reject with WORKER_CRASHED, and the model the engine had is loaded
   * again (from this device's cache) before the next call runs.
   */
  #restart(reason, reload = true) {
    if (this.terminated) return;
    this.worker.terminate();
    this.#failAll('WORKER_CRASHED', reason);
    this.restarts += 1;
    this.loaded = false;
    this.#startWorker();
    const load = reload ? this.lastLoad : null;
    if (!load) return;
    this.restarting = this.#post('load', load, null).then(() => { this.loaded = true; }, (e) => {
      console.error('padlock: the model could not be loaded again after a crash', e);
    }).finally(() => { this.restarting = null; });
  }

  #failAll(code, message) {
    for (const [, p] of this.pending) p.reject(new PadlockError({ code, message }));
    this.pending.clear();
  }

  async #call(type, payload = {}, onEvent = null, transfer = []) {
    if (this.restarting && type !== 'cancel') await this.restarting;
    return this.#post(type, payload, onEvent, transfer);
  }

  #post(type, payload = {}, onEvent = null, transfer = []) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onEvent, type });
      this.worker.postMessage({ id, type, ...payload }, transfer);
    });
  }

  /**
   * Loads a model. `source` is a URL (fetched by the worker with streamed progress), or a
   * Uint8Array / ArrayBuffer / Blob the page already has. onProgress receives
   * { phase: 'download' | 'load', fraction (0..1), loaded, total }.
   * options.backend: 'auto' (default: WebGPU when the browser has an adapter, else the CPU),
   * 'webgpu' (rejects with GPU_UNAVAILABLE without one) or 'cpu'.
   * options.contextLength: the longest conversation, in tokens, to plan memory for (default:
   * the model's context, at most 4096). The model's header is read first (for a URL, as the
   * first megabytes arrive) and the load refused there, before the weights are downloaded,
   * with the typed error loading would give (UNSUPPORTED_DTYPE, UNSUPPORTED_ARCHITECTURE, …),
   * MEMORY_LIMIT when the weights and the keys and values of that context do not fit in
   * WebAssembly's memory, or GPU_LIMITS when 'webgpu' was asked for and a tensor does not fit
   * the GPU's largest binding.
   * Resolves to { info, bytes, loadMs }; info.backend is 'webgpu' or 'cpu', and
   * info.backendNotice says why the CPU runs when 'auto' could not use WebGPU.
   */
  async load(source, onProgress = () => {}, { backend = 'auto', sha256, contextLength } = {}) {
    const onEvent = (m) => {
      if (m.type === 'progress') onProgress({ phase: m.phase, fraction: m.fraction, loaded: m.loaded, total: m.total });
    };
    let payload;
    let transfer = [];
    if (typeof source === 'string' || source instanceof URL) {
      payload = { url: new URL(String(source), globalThis.location?.href).href };
    } else if (source instanceof Blob) {
      const buf = await source.arrayBuffer();
      payload = { bytes: buf };
      transfer = [buf];
    } else if (source instanceof ArrayBuffer) {
      payload = { bytes: source };
    } else if (ArrayBuffer.isView(source)) {
      payload = { bytes: new Uint8Array(source.buffer, source.byteOffset, source.byteLength) };
    } else {
      throw new PadlockError({ code: 'INVALID_ARGUMENT', message: 'model: a URL, Uint8Array, ArrayBuffer or Blob' });
    }
    if (sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(String(sha256))) {
      throw new PadlockError({ code: 'INVALID_ARGUMENT', message: 'sha256: 64 hexadecimal digits' });
    }
    if (contextLength !== undefined && !(Number.isInteger(contextLength) && contextLength > 0)) {
      throw new PadlockError({ code: 'INVALID_ARGUMENT', message: 'contextLength: a positive whole number of tokens' });
    }
    this.loaded = false;
    this.lastLoad = payload.url ? { url: payload.url, backend, sha256, contextLength } : null;
    const r = await this.#call('load', { ...payload, backend, sha256, contextLength }, onEvent, transfer);
    this.loaded = true;
    this.lastInfo = r.info;
    return r;
  }

  /** rt.info() of the loaded model: { architecture, layers, hidden, vocabSize, contextLength, backend, kernel, backendNotice }. */
  info() {
    return this.#call('info');
  }

  /**
   * Generates an answer to `prompt` (the chat template is applied by the runtime).
   * Options: the runtime's GenerateOptions in camelCase (see Runtime.generate in
   * src/web/mod.rs; the Rust types are the one definition of every option).
   * onToken(piece, tokenId, explanation) is called for each generated token; with PAD,
   * explanation = { chosen, baseTop1, baseTop1Text, contributions, candidates }. Resolves to
   * { promptIds, generatedIds, text, prefillTokensPerSecond, decodeTokensPerSecond, stopReason,
   * rewardLabels, sequenceRewards, wallMs } (+ samples, best for best-of-n).
   */
  generate(prompt, options = {}, onToken = null) {
    return this.#generate({ prompt, options: clean(options) }, onToken);
  }

  /**
   * Like generate, steered by the preference memory (its active preferences and profile).
   * The result also has `response` (what memory.feedback takes), `preferences` (the ids that
   * steered) and `considered` (every stored preference: its relevance and whether it steered).
   */
  generateWithMemory(prompt, options = {}, onToken = null) {
    return this.#generate({ prompt, options: clean(options), useMemory: true }, onToken);
  }

  #generate(request, onToken) {
    const onEvent = (m) => {
      if (m.type === 'token' && onToken) onToken(m.piece, m.tokenId, m.explanation);
    };
    return this.#call('generate', request, onEvent);
  }

  /**
   * A chat completion (OpenAI's request and response shapes; padlock's additions under
   * `personalization`). With `stream: true`, resolves to an async iterable of chunks. An
   * aborted `signal` stops the answer within one token and rejects (or ends the iteration)
   * with an AbortError; the engine is ready for the next request.
   */
  async #create(request) {
    if (!request || typeof request !== 'object') {
      throw new PadlockError({ code: 'INVALID_ARGUMENT', message: 'chat.completions.create takes a request object' });
    }
    const { signal, ...body } = request;
    signal?.throwIfAborted();
    const explain = body.personalization?.explain === true;
    const queue = new ChunkQueue();
    const meta = { id: `chatcmpl-${Date.now().toString(16)}`, created: Math.floor(Date.now() / 1000) };
    const onEvent = (m) => {
      if (m.type !== 'token') return;
      const delta = { content: m.piece };
      const chunk = chunkOf(meta, delta, null);
      if (explain && m.explanation) chunk.choices[0].explanation = m.explanation;
      queue.push(chunk);
    };
    const onAbort = () => this.cancel().catch(() => {});
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = this.#call('chat', { request: body }, onEvent).then((r) => {
      if (signal?.aborted || r.choices[0].finish_reason === 'cancelled') throw abortError(signal);
      return r;
    }).finally(() => signal?.removeEventListener('abort', onAbort));
    if (!body.stream) return done;
    done.then((r) => {
      const last = chunkOf(meta, {}, r.choices[0].finish_reason);
      last.usage = r.usage;
      last.personalization = r.personalization;
      queue.push(last);
      queue.end();
    }, (e) => queue.fail(e));
    // The first chunk carries the role, as OpenAI's streams do.
    queue.unshift(chunkOf(meta, { role: 'assistant', content: '' }, null));
    return queue;
  }

  /** Deletes the preference memory (telling other tabs to close it first) and the cached model. */
  forget() {
    return this.#call('forget');
  }

  /** Loads a value head (safetensors) from a same-origin URL or bytes under `name`; resolves to its metadata. */
  loadHead(name, source) {
    if (typeof source === 'string' || source instanceof URL) {
      return this.#call('loadHead', { name, url: new URL(String(source), globalThis.location?.href).href });
    }
    const bytes = ArrayBuffer.isView(source) ? source.slice().buffer : source;
    return this.#call('loadHead', { name, bytes }, null, [bytes]);
  }

  /** Logits (Float32Array of vocabSize) after feeding `ids` from a fresh context. */
  logits(ids) {
    return this.#call('logits', { ids: Array.from(ids) });
  }

  /** Frees the caches the last chat turn kept (the next turn prefills its whole prompt). */
  releaseCaches() {
    return this.#call('releaseCaches');
  }

  /** Stops a running generate at the next token. */
  cancel() {
    return this.#call('cancel');
  }

  unload() {
    this.loaded = false;
    return this.#call('unload');
  }

  ping() {
    return this.#call('ping');
  }

  terminate() {
    this.terminated = true;
    this.worker.terminate();
    this.#failAll('TERMINATED', 'the padlock worker was terminated');
  }
}

function chunkOf(meta, delta, finishReason) {
  return {
    id: meta.id,
    object: 'chat.completion.chunk',
    created: meta.created,
    model: 'padlock',
    choices: [{ index: 0, delta, finish_reason: finishReason }],
  };
}

function abortError(signal) {
  const reason = signal?.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  return new DOMException('the request was aborted', 'AbortError');
}

/** The chunks of a streamed answer, as an async iterable that ends, or throws, with the answer. */
class ChunkQueue {
  #items = [];
  #waiting = null;
  #ended = false;
  #error = null;

  push(item) {
    this.#items.push(item);
    this.#wake();
  }

  unshift(item) {
    this.#items.unshift(item);
    this.#wake();
  }

  end() {
    this.#ended = true;
    this.#wake();
  }

  fail(error) {
    this.#error = error;
    this.#wake();
  }

  #wake() {
    const w = this.#waiting;
    this.#waiting = null;
    w?.();
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      if (this.#items.length) {
        yield this.#items.shift();
      } else if (this.#error) {
        throw this.#error;
      } else if (this.#ended) {
        return;
      } else {
        await new Promise((resolve) => { this.#waiting = resolve; });
      }
    }
  }
}

function clean(options) {
  const out = {};
  for (const [k, v] of Object.entries(options || {})) {
    if (v === undefined || v === null || v === '' || (typeof v === 'number' && Number.isNaN(v))) continue;
    out[k] = v;
  }
  return out;
}
