// Promise API over the padlock worker (worker.js). The page never runs the model itself.
//
//   import { PadlockClient } from './client.js';
//   const client = new PadlockClient();
//   const { info } = await client.load('/models/SmolLM2-135M-Instruct.Q4_1.gguf',
//                                      ({ phase, fraction, loaded, total }) => {});
//   const r = await client.generate('Hello', { temperature: 0.5 }, (piece, id) => {});
//   client.cancel();          // a running generate resolves with stopReason 'cancelled'
//   await client.memory.add('Keep answers short.', { weight: 1.5 });   // preference memory
//   const r = await client.generateWithMemory('Hello', {}, onToken);   // steered by it
//   await client.memory.feedback({ kind: 'thumbs_up', prompt: 'Hello', responses: [r.response] });
//   await client.forget();    // deletes the memory (other tabs close theirs) and the cached model
//   client.onMemoryClosed = () => {};   // another tab forgot the memory
//
// Rejections are Errors with a string `.code` (the Rust side's stable code, or one of
// PKG_MISSING, MODEL_FETCH_FAILED, NOT_LOADED, BUSY, WORKER_CRASHED, TERMINATED).

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

export class PadlockClient {
  constructor(workerUrl = new URL('./worker.js', import.meta.url)) {
    this.worker = new Worker(workerUrl, { type: 'module', name: 'padlock' });
    this.nextId = 1;
    this.pending = new Map(); // id -> { resolve, reject, onEvent }
    this.worker.onmessage = (e) => this.#onMessage(e.data);
    this.worker.onerror = (e) => {
      e.preventDefault?.();
      this.#failAll('WORKER_CRASHED', `the padlock worker failed: ${e.message || 'unknown error'}`);
    };
    this.worker.onmessageerror = () => this.#failAll('WORKER_CRASHED', 'a message from the worker could not be read');
    this.loaded = false;
    this.lastInfo = null;
    this.onMemoryClosed = null;
    // memory.list(), memory.add(text, options), ... : the worker's Memory, by name.
    this.memory = new Proxy({}, {
      get: (_, op) => (typeof op === 'string' ? (...args) => this.#call('memory', { op, args }) : undefined),
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
    } else if (p.onEvent) {
      try {
        p.onEvent(msg);
      } catch (err) {
        console.error('padlock callback threw', err);
      }
    }
  }

  #failAll(code, message) {
    for (const [, p] of this.pending) p.reject(new PadlockError({ code, message }));
    this.pending.clear();
  }

  #call(type, payload = {}, onEvent = null, transfer = []) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onEvent });
      this.worker.postMessage({ id, type, ...payload }, transfer);
    });
  }

  /**
   * Loads a model. `source` is a URL (fetched by the worker with streamed progress), or a
   * Uint8Array / ArrayBuffer / Blob the page already has. onProgress receives
   * { phase: 'download' | 'load', fraction (0..1), loaded, total }.
   * options.backend: 'auto' (default: WebGPU when the browser has an adapter, else the CPU),
   * 'webgpu' (rejects with GPU_UNAVAILABLE without one) or 'cpu'.
   * Resolves to { info, bytes, loadMs }; info.backend is 'webgpu' or 'cpu', and
   * info.backendNotice says why the CPU runs when 'auto' could not use WebGPU.
   */
  async load(source, onProgress = () => {}, { backend = 'auto' } = {}) {
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
      throw new PadlockError({ code: 'BAD_REQUEST', message: 'load() takes a URL, Uint8Array, ArrayBuffer or Blob' });
    }
    this.loaded = false;
    const r = await this.#call('load', { ...payload, backend }, onEvent, transfer);
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
   * The result also has `response` (what memory.feedback takes) and `preferences` (the ids).
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
    this.worker.terminate();
    this.#failAll('TERMINATED', 'the padlock worker was terminated');
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
