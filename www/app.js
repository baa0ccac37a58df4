// The padlock demo page: loads the model in a worker, streams answers, shows tokens/s.
// Everything stays in this tab; the only requests are for the page itself, the wasm and the model.
import { Engine } from 'padlock-llm';
import { setupMemoryPanel } from './memory-panel.js';

const DEFAULT_MODEL = '/models/SmolLM2-135M-Instruct.Q4_1.gguf';

const $ = (id) => document.getElementById(id);
const el = {
  status: $('status'),
  backend: $('backend'),
  notice: $('notice'),
  backendChoice: $('backend-choice'),
  progress: $('progress'),
  modelFile: $('model-file'),
  prompt: $('prompt'),
  send: $('send'),
  stop: $('stop'),
  stats: $('stats'),
  error: $('error'),
  answer: $('answer'),
  temperature: $('temperature'),
  topP: $('top-p'),
  topK: $('top-k'),
  repetitionPenalty: $('repetition-penalty'),
  maxTokens: $('max-tokens'),
  seed: $('seed'),
  greedy: $('greedy'),
  system: $('system'),
  method: $('method'),
  beta: $('beta'),
  candidates: $('candidates'),
  prefs: [[$('pref-1'), $('weight-1')], [$('pref-2'), $('weight-2')]],
  explain: $('explain'),
  explanation: $('explanation'),
  tokens: $('tokens'),
};

// What the user sees when something fails, by the runtime's error code.
const EXPLAIN = {
  GGUF_EMPTY: 'The model file is empty.',
  GGUF_BAD_MAGIC: 'This is not a GGUF model file.',
  GGUF_TRUNCATED: 'The model file is incomplete (truncated download?).',
  GGUF_TENSOR_OUT_OF_BOUNDS: 'The model file is incomplete or corrupt: a tensor lies outside the file.',
  UNSUPPORTED_DTYPE: 'This model uses a tensor type padlock does not support yet.',
  UNSUPPORTED_ARCHITECTURE: 'This model architecture is not supported (padlock runs Llama-style models).',
  PROMPT_TOO_LONG: 'The message is longer than the model’s context. Please shorten it.',
  CANCELLED: 'Stopped.',
  PKG_MISSING: 'The padlock WebAssembly package is missing on the server (run “make pkg”).',
  MODEL_FETCH_FAILED: 'The model could not be downloaded.',
  NOT_LOADED: 'No model is loaded yet.',
  GPU_UNAVAILABLE: 'This browser offers no WebGPU adapter; choose the CPU.',
  GPU_LIMITS: 'The model does not fit this GPU’s limits; choose the CPU.',
  BUSY: 'padlock is still busy with the previous request.',
  WORKER_CRASHED: 'The model worker crashed (out of memory?). Reload the page to try again.',
  UNSAFE_PREFERENCE: 'That preference tries to switch off safety, which no preference can do.',
  VALUE_HEAD: 'That value head file cannot be used with this model.',
};

const client = new Engine();
const app = {
  client,
  state: 'idle',
  info: null,
  lastResult: null,
  lastError: null,
  modelUrl: null,
  ready: null,
  progressLog: [], // every progress event of the last load: { phase, fraction }
  backendChoice: 'auto', // ?backend=auto|webgpu|cpu, or the select
  notices: [], // every backend notice shown to the user (each once)
};
// For tests and the console: window.padlock is the client (load/generate/cancel/info/logits).
window.padlock = client;
window.padlockApp = app;

function setState(state) {
  app.state = state;
  document.body.dataset.state = state;
  const ready = state === 'ready';
  el.prompt.disabled = !(ready || state === 'generating');
  el.send.disabled = !ready;
  el.stop.disabled = state !== 'generating';
  el.modelFile.disabled = state === 'loading' || state === 'generating';
  el.backendChoice.disabled = state === 'loading' || state === 'generating';
}

function showError(err) {
  const code = err?.code || 'INTERNAL';
  app.lastError = { code, message: String(err?.message ?? err) };
  const friendly = EXPLAIN[code];
  el.error.textContent = `${friendly ? friendly + ' ' : ''}[${code}] ${err?.message ?? err}`;
  el.error.dataset.code = code;
  el.error.hidden = false;
}

function clearError() {
  el.error.hidden = true;
  el.error.textContent = '';
  delete el.error.dataset.code;
}

const mb = (n) => (n / 1e6).toFixed(1);

function onProgress({ phase, fraction, loaded, total }) {
  app.progressLog.push({ phase, fraction });
  const pct = Math.round((fraction || 0) * 100);
  if (phase === 'cache') {
    el.status.textContent = `Read the model from this device's cache (${mb(loaded || 0)} MB)`;
    el.progress.value = 0.5;
  } else if (phase === 'download') {
    el.status.textContent = total
      ? `Downloading the model… ${pct}% (${mb(loaded)} / ${mb(total)} MB)`
      : `Downloading the model… ${mb(loaded || 0)} MB`;
    // The download is the first half of the bar, loading the second.
    el.progress.value = (fraction || 0) * 0.5;
  } else {
    el.status.textContent = `Loading the model… ${pct}%`;
    el.progress.value = 0.5 + (fraction || 0) * 0.5;
  }
}

function describe(info) {
  if (!info) return '';
  const parts = [info.architecture, info.layers && `${info.layers} layers`, info.hidden && `hidden ${info.hidden}`,
    info.vocabSize && `vocab ${info.vocabSize}`, info.contextLength && `context ${info.contextLength}`];
  return parts.filter(Boolean).join(' · ');
}

// Says once why the CPU runs although WebGPU was allowed (the same notice is not repeated).
function showNotice(notice) {
  if (!notice) {
    el.notice.hidden = true;
    return;
  }
  el.notice.textContent = `WebGPU is not available here (${notice}).`;
  el.notice.hidden = false;
  if (!app.notices.includes(notice)) {
    app.notices.push(notice);
    console.info(`[padlock] ${notice}`);
  }
}

async function loadModel(source, label) {
  clearError();
  setState('loading');
  el.progress.value = 0;
  app.progressLog = [];
  el.backend.textContent = '';
  el.status.textContent = `Preparing ${label}…`;
  try {
    const r = await client.load(source, onProgress, { backend: app.backendChoice });
    app.info = r.info;
    el.progress.value = 1;
    el.status.textContent = `Ready: ${label} (${describe(r.info)}), loaded in ${(r.loadMs / 1000).toFixed(1)} s` +
      (r.cached ? ' from this device\'s cache' : '');
    el.backend.textContent = `backend: ${r.info?.backend ?? '?'}${r.info?.kernel ? ` (${r.info.kernel})` : ''}`;
    showNotice(r.info?.backendNotice);
    setState('ready');
    el.prompt.focus();
    return r.info;
  } catch (err) {
    el.status.textContent = 'The model could not be loaded.';
    showError(err);
    setState('error');
    throw err;
  }
}

function readOptions() {
  const num = (input) => (input.value === '' ? undefined : Number(input.value));
  const greedy = el.greedy.checked;
  const options = {
    maxTokens: num(el.maxTokens),
    greedy,
    temperature: num(el.temperature),
    topP: num(el.topP),
    topK: num(el.topK),
    repetitionPenalty: num(el.repetitionPenalty),
    seed: num(el.seed),
    system: el.system.value.trim() || undefined,
    method: el.method.value,
    beta: num(el.beta),
    candidates: num(el.candidates),
    preferences: el.prefs
      .map(([text, weight]) => ({ text: text.value.trim(), weight: weight.value === '' ? 1 : Number(weight.value) }))
      .filter((p) => p.text),
  };
  if (options.method === 'base') delete options.preferences;
  for (const k of Object.keys(options)) if (options[k] === undefined) delete options[k];
  return options;
}

async function send() {
  const prompt = el.prompt.value.trim();
  if (!prompt || app.state !== 'ready') return;
  clearError();
  setState('generating');
  el.answer.textContent = '';
  el.answer.classList.add('streaming');
  el.tokens.textContent = '';
  el.explanation.hidden = true;
  const explained = [];
  el.stats.textContent = 'Thinking…';
  let n = 0;
  let firstAt = 0;
  const started = performance.now();
  try {
    const personalize = app.memory.personalize();
    const generate = personalize ? client.generateWithMemory.bind(client) : client.generate.bind(client);
    app.memory.onAnswer(prompt, null);
    const r = await generate(prompt, readOptions(), (piece, id, explanation) => {
      n += 1;
      if (explanation) explained.push({ piece, ...explanation });
      const now = performance.now();
      if (n === 1) firstAt = now;
      el.answer.textContent += piece;
      if (n > 1) el.stats.textContent = `${n} tokens · ${((n - 1) / ((now - firstAt) / 1000)).toFixed(1)} tok/s`;
    });
    app.lastResult = r;
    el.answer.textContent = r.text;
    app.memory.onAnswer(prompt, r);
    if (el.explain.checked && explained.length) showExplanation(explained, r.rewardLabels || []);
    const ids = r.generatedIds?.length ?? n;
    const decode = Number(r.decodeTokensPerSecond);
    const prefill = Number(r.prefillTokensPerSecond);
    el.stats.textContent = [
      `${ids} tokens`,
      Number.isFinite(decode) ? `${decode.toFixed(1)} tok/s` : null,
      Number.isFinite(prefill) ? `prompt ${r.promptIds?.length ?? '?'} tokens at ${prefill.toFixed(1)} tok/s` : null,
      r.stopReason === 'cancelled' ? 'stopped' : r.stopReason === 'length' ? 'reached the token limit' : null,
    ].filter(Boolean).join(' · ');
    el.stats.dataset.decodeTokensPerSecond = String(decode);
  } catch (err) {
    el.stats.textContent = `after ${((performance.now() - started) / 1000).toFixed(1)} s`;
    showError(err);
  } finally {
    el.answer.classList.remove('streaming');
    setState(client.loaded ? 'ready' : 'error');
  }
}

// The compact per-token view: one span per token, marked where PAD moved away from the base
// model's top-1; its title lists the base top-1 and each preference's contribution.
function showExplanation(tokens, labels) {
  const short = (t) => (t.length > 28 ? t.slice(0, 27) + '…' : t);
  for (const t of tokens) {
    const span = document.createElement('span');
    span.className = 'tok' + (t.chosen !== t.baseTop1 ? ' moved' : '');
    span.textContent = t.piece || '·';
    span.tabIndex = 0;
    const parts = t.contributions.map((c, i) => `${short(labels[i] || `preference ${i + 1}`)}: ${c >= 0 ? '+' : ''}${c.toFixed(2)}`);
    span.title = `${t.chosen !== t.baseTop1 ? `base model's choice: ${JSON.stringify(t.baseTop1Text)}` : 'same as the base model'}\n${parts.join('\n')}`;
    span.dataset.contributions = JSON.stringify(t.contributions);
    el.tokens.appendChild(span);
  }
  app.lastExplanation = { tokens, labels };
  el.explanation.hidden = false;
}

el.send.addEventListener('click', send);
el.stop.addEventListener('click', () => client.cancel().catch(showError));
el.prompt.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    send();
  }
});
el.greedy.addEventListener('change', () => {
  for (const x of [el.temperature, el.topP, el.topK, el.seed]) x.disabled = el.greedy.checked;
});
el.backendChoice.addEventListener('change', () => {
  app.backendChoice = el.backendChoice.value;
  if (app.state === 'ready' || app.state === 'error') {
    const file = el.modelFile.files?.[0];
    app.ready = (file ? loadModel(file, file.name) : loadModel(app.modelUrl, app.modelUrl.split('/').pop())).catch(() => null);
  }
});
el.modelFile.addEventListener('change', () => {
  const file = el.modelFile.files?.[0];
  if (file) loadModel(file, file.name).catch(() => {});
});

// Which model: ?model=/path/on/this/server.gguf (same origin only, so nothing leaves the device).
function modelFromQuery() {
  const q = new URLSearchParams(location.search).get('model');
  if (!q) return DEFAULT_MODEL;
  const url = new URL(q, location.href);
  if (url.origin !== location.origin) {
    showError({ code: 'MODEL_FETCH_FAILED', message: `refusing to fetch a model from another origin (${url.origin})` });
    return DEFAULT_MODEL;
  }
  return url.pathname + url.search;
}

setState('idle');
app.memory = setupMemoryPanel({ client, readOptions, setState, getState: () => app.state, showError });
app.modelUrl = modelFromQuery();
{
  const b = new URLSearchParams(location.search).get('backend');
  if (['auto', 'webgpu', 'cpu'].includes(b)) app.backendChoice = b;
  el.backendChoice.value = app.backendChoice;
}
if (new URLSearchParams(location.search).get('autoload') === '0') {
  el.status.textContent = 'Pick a model file to start.';
  $('model-source').open = true;
  app.ready = Promise.resolve(null);
} else {
  app.ready = loadModel(app.modelUrl, app.modelUrl.split('/').pop()).catch(() => null);
}
