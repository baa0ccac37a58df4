// Bad input from JavaScript gets a clear error with a stable code, and cancel works.
// The GGUF cases call the wasm API (pkg/padlock.js) directly in the page; the others go through
// the worker client (window.padlock), so the codes are checked across the worker boundary too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { requireArtifacts, openBrowser, loadModelViaClient, MODEL_URL, MODEL_PATH, ROOT, LOAD_TIMEOUT_MS, GEN_TIMEOUT_MS } from './helpers.mjs';

let env;

before(async () => {
  requireArtifacts();
  env = await openBrowser('errors');
  await env.page.goto(`${env.server.url}/www/?autoload=0`);
});

after(async () => {
  await env?.close();
});

/** Runtime.load(bytes) straight on the wasm API, where bytes = what `make` describes. */
function directLoad(make) {
  return env.page.evaluate(async ({ make, modelUrl }) => {
    const mod = await import('/pkg/padlock.js');
    await mod.default();
    let bytes;
    if (make.kind === 'empty') bytes = new Uint8Array(0);
    else if (make.kind === 'bad-magic') bytes = new TextEncoder().encode('NOT A GGUF FILE, just some text that is long enough');
    else {
      const full = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
      const find = (text) => {
        const needle = new TextEncoder().encode(text);
        outer: for (let i = 0; i + needle.length <= full.length; i++) {
          for (let j = 0; j < needle.length; j++) if (full[i + j] !== needle[j]) continue outer;
          return i + needle.length;
        }
        throw new Error(`${text} not found in the model file`);
      };
      const view = new DataView(full.buffer);
      if (make.kind === 'truncated') bytes = full.slice(0, make.length);
      else if (make.kind === 'architecture') {
        // general.architecture: key, u32 type (string), u64 length, then the value "llama".
        const value = find('general.architecture') + 4 + 8;
        full.set(new TextEncoder().encode('mamba'), value);
        bytes = full;
      } else if (make.kind === 'dtype') {
        // Tensor table entry: name, u32 n_dims, u64 dims[n_dims], u32 ggml type.
        const at = find('token_embd.weight');
        const nDims = view.getUint32(at, true);
        view.setUint32(at + 4 + 8 * nDims, 23, true); // IQ4_XS, a type padlock does not read
        bytes = full;
      }
    }
    try {
      const rt = await mod.Runtime.load(bytes, () => {});
      return { loaded: true, info: rt.info() };
    } catch (e) {
      return { code: e?.code ?? null, message: String(e?.message ?? e), isError: e instanceof Error };
    }
  }, { make, modelUrl: MODEL_URL });
}

test('Runtime.load of an empty Uint8Array rejects with GGUF_EMPTY', async () => {
  const r = await directLoad({ kind: 'empty' });
  assert.equal(r.code, 'GGUF_EMPTY', JSON.stringify(r));
  assert.equal(r.isError, true, 'the rejection should be an Error');
  assert.ok(r.message.length > 0);
});

test('Runtime.load of bytes with the wrong magic rejects with GGUF_BAD_MAGIC', async () => {
  const r = await directLoad({ kind: 'bad-magic' });
  assert.equal(r.code, 'GGUF_BAD_MAGIC', JSON.stringify(r));
});

test('the real file cut to 1 MB (inside the metadata) rejects with GGUF_TRUNCATED', async () => {
  // The metadata (vocabulary, merges) runs to ~1.77 MB, so 1 MiB ends inside it.
  const r = await directLoad({ kind: 'truncated', length: 1 << 20 });
  assert.equal(r.code, 'GGUF_TRUNCATED', JSON.stringify(r));
});

test('the real file cut to 2 MB (after the tensor table) rejects with GGUF_TENSOR_OUT_OF_BOUNDS', async () => {
  // The tensor table ends at ~1.79 MB; the tensors' data then lies past the end.
  const r = await directLoad({ kind: 'truncated', length: 2 << 20 });
  assert.equal(r.code, 'GGUF_TENSOR_OUT_OF_BOUNDS', JSON.stringify(r));
});

test('a file of an architecture padlock does not run rejects with UNSUPPORTED_ARCHITECTURE, naming those it runs', async () => {
  const r = await directLoad({ kind: 'architecture' });
  assert.equal(r.code, 'UNSUPPORTED_ARCHITECTURE', JSON.stringify(r));
  assert.match(r.message, /mamba/);
  assert.match(r.message, /llama, qwen2, qwen3, gemma2, gemma3/);
});

test('a tensor of an unsupported type rejects with UNSUPPORTED_DTYPE', async () => {
  const r = await directLoad({ kind: 'dtype' });
  assert.equal(r.code, 'UNSUPPORTED_DTYPE', JSON.stringify(r));
  assert.match(r.message, /IQ4_XS/);
});

test('the worker client keeps the error code (GGUF_EMPTY through postMessage)', async () => {
  const r = await env.page.evaluate(async () => {
    try {
      await window.padlock.load(new Uint8Array(0));
      return { loaded: true };
    } catch (e) {
      return { code: e.code, message: e.message };
    }
  });
  assert.equal(r.code, 'GGUF_EMPTY', JSON.stringify(r));
});

test('a model file larger than wasm memory can hold is refused with MEMORY_LIMIT before its download', async () => {
  // Only the headers are real here: the check reads Content-Length before the body.
  const url = '/models/too-large.gguf';
  await env.context.route(`**${url}`, (route) => route.fulfill({
    status: 200,
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(5 * 1024 ** 3) },
    body: 'GGUF',
  }));
  const r = await env.page.evaluate(async (url) => {
    const { createEngine } = await import('padlock-llm');
    try {
      await createEngine({ model: url, backend: 'cpu' });
      return { ok: true };
    } catch (e) {
      return { code: e.code, message: e.message };
    }
  }, url);
  await env.context.unroute(`**${url}`);
  assert.equal(r.code, 'MEMORY_LIMIT', JSON.stringify(r));
  assert.match(r.message, /5120 MB/);
});

/**
 * A 600 MB "model" file served by the test server: the default model's first 8 MB (its header
 * and the start of its weights) patched by `patch`, then a hole of zeros (a sparse file).
 */
function bigModelFile(name, patch) {
  const head = fs.readFileSync(MODEL_PATH).subarray(0, 8 * 1024 ** 2);
  patch(head);
  const rel = `target/tmp/e2e-${name}.gguf`;
  fs.mkdirSync(path.join(ROOT, 'target/tmp'), { recursive: true });
  const fd = fs.openSync(path.join(ROOT, rel), 'w');
  fs.writeSync(fd, head);
  fs.ftruncateSync(fd, 600 * 1024 ** 2);
  fs.closeSync(fd);
  return '/' + rel;
}

/** Sets a metadata value of the default model's header in place: the u32 after `key`. */
function setMetaU32(head, key, value) {
  const at = head.indexOf(Buffer.from(key)) + key.length;
  assert.equal(head.readUInt32LE(at), 4, `${key} is a u32`);
  head.writeUInt32LE(value, at + 4);
}

/** createEngine's error for `url`, and the most of the file the download reported having read. */
async function createEngineError(url, options) {
  return env.page.evaluate(async ({ url, options }) => {
    const { createEngine } = await import('padlock-llm');
    let read = 0;
    const onProgress = (p) => { if (p.phase === 'download') read = Math.max(read, p.loaded || 0); };
    try {
      await createEngine({ model: url, onProgress, ...options });
      return { ok: true, read };
    } catch (e) {
      return { code: e.code, message: e.message, read };
    }
  }, { url, options });
}

test('a model that cannot run here is refused from its header, before its weights download', async (t) => {
  const mb32 = 32 * 1024 ** 2;
  await t.test('weights and the keys and values of the asked context beyond wasm memory: MEMORY_LIMIT', async () => {
    const url = bigModelFile('long-context', (h) => setMetaU32(h, 'llama.context_length', 1 << 20));
    const r = await createEngineError(url, { backend: 'cpu', contextLength: 100_000 });
    assert.equal(r.code, 'MEMORY_LIMIT', JSON.stringify(r));
    assert.match(r.message, /100000-token context/);
    assert.ok(r.read < mb32, `${r.read} bytes were read of 600 MB`);
  });
  await t.test('a tensor type padlock does not read: UNSUPPORTED_DTYPE', async () => {
    const url = bigModelFile('iq4-xs', (h) => {
      const at = h.indexOf(Buffer.from('token_embd.weight')) + 'token_embd.weight'.length;
      h.writeUInt32LE(23, at + 4 + 8 * h.readUInt32LE(at)); // IQ4_XS
    });
    const r = await createEngineError(url, { backend: 'cpu' });
    assert.equal(r.code, 'UNSUPPORTED_DTYPE', JSON.stringify(r));
    assert.match(r.message, /IQ4_XS/);
    assert.ok(r.read < mb32, `${r.read} bytes were read of 600 MB`);
  });
  await t.test('contextLength must be a positive whole number', async () => {
    const r = await createEngineError(MODEL_URL, { backend: 'cpu', contextLength: 0 });
    assert.equal(r.code, 'INVALID_ARGUMENT', JSON.stringify(r));
  });
});

test('with the real model: PROMPT_TOO_LONG, cancel, and the runtime still works afterwards',
  { timeout: LOAD_TIMEOUT_MS + 3 * GEN_TIMEOUT_MS }, async (t) => {
    const info = await loadModelViaClient(env.page, env.server.url, { backend: 'cpu' });
    assert.equal(info.layers, 30);

    await t.test('a prompt longer than the context rejects with PROMPT_TOO_LONG', async () => {
      const r = await env.page.evaluate(async (n) => {
        try {
          await window.padlock.generate('hello world '.repeat(n), { maxTokens: 8 });
          return { ok: true };
        } catch (e) {
          return { code: e.code, message: e.message };
        }
      }, Math.ceil(info.contextLength / 2) + 100); // ~2 tokens per repeat: well past the context
      assert.equal(r.code, 'PROMPT_TOO_LONG', JSON.stringify(r));
    });

    await t.test('a misspelt option rejects with INVALID_ARGUMENT naming it, memory-steered too', async () => {
      const r = await env.page.evaluate(async () => {
        const codes = [];
        for (const call of [() => window.padlock.generate('Hi', { max_tokens: 8 }),
          () => window.padlock.generateWithMemory('Hi', { maxTokens: 8, betta: 2 })]) {
          try {
            await call();
            codes.push({ ok: true });
          } catch (e) {
            codes.push({ code: e.code, message: e.message });
          }
        }
        return codes;
      });
      assert.equal(r[0].code, 'INVALID_ARGUMENT', JSON.stringify(r));
      assert.match(r[0].message, /max_tokens/);
      assert.equal(r[1].code, 'INVALID_ARGUMENT', JSON.stringify(r));
      assert.match(r[1].message, /betta/);
    });

    await t.test('cancel stops a running generate with stopReason "cancelled"', async () => {
      const r = await env.page.evaluate(async () => {
        let n = 0;
        const pieces = [];
        const res = await window.padlock.generate('Write a very long story about a dragon.', { maxTokens: 200, seed: 3 },
          (piece) => {
            pieces.push(piece);
            n += 1;
            if (n === 3) window.padlock.cancel();
          });
        return { res, streamed: n };
      });
      assert.equal(r.res.stopReason, 'cancelled', JSON.stringify(r.res));
      assert.ok(r.res.generatedIds.length < 200, `generated ${r.res.generatedIds.length} tokens`);
      assert.ok(r.res.generatedIds.length >= 3);
    });

    await t.test('after an error and a cancel, a normal generate still works', async () => {
      const r = await env.page.evaluate(() => window.padlock.generate('Say hello.', { maxTokens: 8, greedy: true }));
      assert.ok(r.generatedIds.length > 0 && r.generatedIds.length <= 8);
      assert.ok(['eos', 'length'].includes(r.stopReason));
    });

    await t.test('a second generate while one is running is refused with BUSY', async () => {
      const r = await env.page.evaluate(async () => {
        const first = window.padlock.generate('Count from one to twenty.', { maxTokens: 16, greedy: true });
        let second;
        try {
          await window.padlock.generate('Hi', { maxTokens: 4 });
          second = { ok: true };
        } catch (e) {
          second = { code: e.code };
        }
        const a = await first;
        return { first: a.stopReason, second };
      });
      assert.equal(r.second.code, 'BUSY', JSON.stringify(r));
      assert.ok(['eos', 'length'].includes(r.first));
    });

    await t.test('cancel stops a long prompt between the parts of its prefill', async () => {
      const r = await env.page.evaluate(async () => {
        const running = window.padlock.generate('hello world '.repeat(1500), { maxTokens: 8, greedy: true });
        // The worker reads the cancel between two parts (256 tokens a context) of the prefill.
        await new Promise((resolve) => setTimeout(resolve, 300));
        await window.padlock.cancel();
        return running;
      });
      assert.equal(r.stopReason, 'cancelled', JSON.stringify({ ...r, promptIds: r.promptIds.length }));
      assert.equal(r.generatedIds.length, 0);
      assert.ok(r.prefilledTokens[0] < r.promptIds.length,
        `prefilled ${r.prefilledTokens[0]} of ${r.promptIds.length} prompt tokens`);
      assert.equal(r.prefilledTokens[0] % 256, 0, `prefilled ${r.prefilledTokens[0]}`);
    });

    await t.test('keys and values that cannot fit in wasm memory are refused with MEMORY_LIMIT before any is allocated', async () => {
      // Leave the engine about 512 MiB: its wasm memory is grown to 3.5 GiB from inside its
      // worker (pages grown from outside are never handed out by its allocator).
      const worker = env.page.workers().find((w) => w.url().endsWith('/worker.js'));
      const grown = await worker.evaluate(async () => {
        const wasm = await (await import(new URL('padlock.js', self.location.href).href)).default();
        wasm.memory.grow(7 * 8192 - wasm.memory.buffer.byteLength / 65536);
        return wasm.memory.buffer.byteLength;
      });
      assert.equal(grown, 3.5 * 1024 ** 3);
      const r = await env.page.evaluate(async () => {
        const engine = window.padlock;
        const preferences = [{ text: 'Be concise.' }, { text: 'Use metric units.' }];
        let streamed = 0;
        let refused;
        try {
          // 4 contexts (base, two preferences, harmlessness) of about 8000 positions: ~1.4 GB.
          await engine.generate('Hi', { maxTokens: 8000, ignoreEos: true, method: 'pad', preferences }, () => { streamed += 1; });
          refused = { ok: true };
        } catch (e) {
          refused = { code: e.code, message: e.message };
        }
        const next = await engine.generate('Say hello.', { maxTokens: 8, greedy: true });
        return { refused, streamed, restarts: engine.restarts, next };
      });
      assert.equal(r.refused.code, 'MEMORY_LIMIT', JSON.stringify(r.refused));
      assert.match(r.refused.message, /4 contexts/);
      assert.equal(r.streamed, 0, 'tokens were generated before the refusal');
      assert.equal(r.restarts, 0, 'the worker trapped instead');
      assert.ok(r.next.generatedIds.length > 0 && r.next.generatedIds.length <= 8);
    });

    await t.test('a WebAssembly trap restarts the engine: that call rejects with WORKER_CRASHED, the next one works', async () => {
      // Memory exhausted, for real: the engine's wasm memory is grown to its 4 GiB limit from
      // inside its worker (the same module instance the worker runs), so the next allocation
      // the engine makes cannot grow it and traps.
      const worker = env.page.workers().find((w) => w.url().endsWith('/worker.js'));
      assert.ok(worker, `no engine worker among ${env.page.workers().map((w) => w.url())}`);
      const grown = await worker.evaluate(async () => {
        const wasm = await (await import(new URL('padlock.js', self.location.href).href)).default();
        const pages = wasm.memory.buffer.byteLength / 65536;
        wasm.memory.grow(65536 - pages);
        return wasm.memory.buffer.byteLength;
      });
      assert.equal(grown, 4 * 1024 ** 3);
      const r = await env.page.evaluate(async () => {
        const engine = window.padlock;
        const restartsBefore = engine.restarts;
        let crashed;
        try {
          await engine.loadHead('big', new Uint8Array(64 * 1024 * 1024));
          crashed = { ok: true };
        } catch (e) {
          crashed = { code: e.code, message: e.message };
        }
        const next = await engine.generate('Say hello.', { maxTokens: 8, greedy: true });
        return { crashed, restarts: engine.restarts - restartsBefore, next };
      });
      assert.equal(r.crashed.code, 'WORKER_CRASHED', JSON.stringify(r.crashed));
      assert.match(r.crashed.message, /WebAssembly trap/);
      assert.equal(r.restarts, 1);
      assert.ok(r.next.generatedIds.length > 0 && r.next.generatedIds.length <= 8);
    });
  });
