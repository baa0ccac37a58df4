// The padlock demo page: a private, personalized chat. The model runs in the package's worker,
// conversations and preferences are kept encrypted on this device, and the page shows what it
// measures about privacy (requests since the model loaded, storage). This module wires the parts;
// each concern lives in its own module.
import { Engine, listModels } from 'padlock-llm';
import { setupMemoryPanel } from './memory-panel.js';
import { setupPrivacyPanel } from './privacy.js';
import { openConversations } from './conversations.js';
import { setupChat } from './chat.js';
import { setupConversationList } from './conversation-list.js';
import { setupCompare } from './compare.js';
import { renderTokens } from './explanation.js';
import { setupOffline } from './offline.js';
import { setupKeptModels } from './kept-models.js';

const DEFAULT_MODEL = '/models/SmolLM2-135M-Instruct.Q4_1.gguf';
// Set once the person agreed to download the model (a later visit loads it without asking).
const CONSENT_KEY = 'padlock-demo-model-consent';

const $ = (id) => document.getElementById(id);
const el = {
  status: $('status'),
  backend: $('backend'),
  notice: $('notice'),
  backendChoice: $('backend-choice'),
  progress: $('progress'),
  modelFile: $('model-file'),
  consent: $('consent'),
  consentDownload: $('consent-download'),
  prompt: $('prompt'),
  send: $('send'),
  stop: $('stop'),
  compare: $('compare-button'),
  newChat: $('new-chat'),
  messages: $('messages'),
  announcer: $('answer-announcer'),
  stats: $('stats'),
  error: $('error'),
  temperature: $('temperature'),
  topP: $('top-p'),
  maxTokens: $('max-tokens'),
  seed: $('seed'),
  greedy: $('greedy'),
  system: $('system'),
  explanation: $('explanation'),
  tokens: $('tokens'),
  tokenDetail: $('token-detail'),
};

// What the user sees when something fails, by the runtime's error code.
const EXPLAIN = {
  GGUF_EMPTY: 'The model file is empty.',
  GGUF_BAD_MAGIC: 'This is not a GGUF model file.',
  GGUF_TRUNCATED: 'The model file is incomplete (truncated download?).',
  GGUF_TENSOR_OUT_OF_BOUNDS: 'The model file is incomplete or corrupt: a tensor lies outside the file.',
  UNSUPPORTED_DTYPE: 'This model uses a tensor type padlock does not support yet.',
  UNSUPPORTED_ARCHITECTURE: 'This model architecture is not supported (padlock runs Llama, Qwen2, Qwen3, Gemma 2 and Gemma 3 models).',
  PROMPT_TOO_LONG: 'The message is longer than the model’s context. Please shorten it.',
  CANCELLED: 'Stopped.',
  PKG_MISSING: 'The padlock WebAssembly package is missing on the server (run “make pkg”).',
  MODEL_FETCH_FAILED: 'The model could not be downloaded.',
  NOT_LOADED: 'No model is loaded yet.',
  GPU_UNAVAILABLE: 'This browser offers no WebGPU adapter; choose the CPU.',
  GPU_LIMITS: 'The model does not fit this GPU’s limits; choose the CPU.',
  BUSY: 'padlock is still busy with the previous request.',
  WORKER_CRASHED: 'The engine stopped (out of memory?) and starts again with the model kept on this device; try again in a moment.',
  MEMORY_LIMIT: 'That does not fit in this browser’s memory for WebAssembly: try a shorter chat, fewer tokens or fewer preferences (or a smaller model).',
  UNSAFE_PREFERENCE: 'That preference tries to switch off safety, which no preference can do.',
  VALUE_HEAD: 'That value head file cannot be used with this model.',
  NOTHING_TO_COMPARE: 'Compare needs preferences to steer one of the answers.',
};

const client = new Engine();
const app = {
  client,
  state: 'idle',
  info: null,
  lastResult: null, // the last answer: { text, finishReason, tokens, count, usage, personalization }
  lastError: null,
  modelUrl: null,
  ready: null,
  progressLog: [], // every progress event of the last load: { phase, fraction }
  backendChoice: 'auto', // ?backend=auto|webgpu|cpu, or the select
  notices: [], // every backend notice shown to the user (each once)
};
// For tests and the console: window.padlock is the engine, window.padlockApp the page's state.
window.padlock = client;
window.padlockApp = app;

const privacy = setupPrivacyPanel({ requestCount: $('request-count'), workerRequestCount: $('worker-request-count'),
  persisted: $('persisted'), storageUsed: $('storage-used') });
const offline = setupOffline({ status: $('offline'), onRequest: (url) => privacy.serviceWorkerRequest(url) });
app.privacy = privacy;

function setState(state) {
  app.state = state;
  document.body.dataset.state = state;
  const ready = state === 'ready';
  el.prompt.disabled = !(ready || state === 'generating');
  el.send.disabled = !ready;
  el.compare.disabled = !ready;
  el.stop.disabled = state !== 'generating';
  el.newChat.disabled = state === 'generating';
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
    privacy.modelLoaded();
    setState('ready');
    keptModels.refresh();
    el.prompt.focus();
    return r.info;
  } catch (err) {
    el.status.textContent = 'The model could not be loaded.';
    showError(err);
    setState('error');
    throw err;
  }
}

/** The chat request for `messages`, as the settings and the preferences panel say. */
function buildRequest(messages, { explain } = {}) {
  const num = (input) => (input.value === '' ? undefined : Number(input.value));
  const system = el.system.value.trim();
  const personalization = app.memory.personalization();
  if (explain !== undefined && personalization.method !== 'base') personalization.explain = explain;
  const request = {
    messages: system ? [{ role: 'system', content: system }, ...messages] : messages,
    max_tokens: num(el.maxTokens),
    // Temperature 0 is greedy in the chat API.
    temperature: el.greedy.checked ? 0 : num(el.temperature),
    top_p: el.greedy.checked ? undefined : num(el.topP),
    seed: num(el.seed),
    personalization,
  };
  for (const k of Object.keys(request)) if (request[k] === undefined) delete request[k];
  return request;
}

function onAnswer(turn) {
  app.memory.onAnswer(turn);
  el.explanation.hidden = true;
  if (!turn?.result) return;
  app.lastResult = turn.result;
  const explained = turn.result.tokens.filter((t) => t.contributions);
  if (explained.length) {
    renderTokens(el.tokens, el.tokenDetail, explained, turn.result.personalization?.labels ?? []);
    el.explanation.hidden = false;
  }
  privacy.refreshStorage();
}

el.greedy.addEventListener('change', () => {
  for (const x of [el.temperature, el.topP, el.seed]) x.disabled = el.greedy.checked;
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
  if (file) {
    el.consent.hidden = true;
    app.ready = loadModel(file, file.name).catch(() => null);
  }
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

// Whether this model is already kept on the device (then loading it downloads nothing).
async function modelIsKept(url) {
  try {
    const href = new URL(url, location.href).href;
    return (await listModels()).some((m) => m.url === href);
  } catch {
    return false;
  }
}

// A first visit asks before the download; ?autoload=1, an earlier consent or a kept model skip
// the question, ?autoload=0 waits for a file.
async function start() {
  const autoload = new URLSearchParams(location.search).get('autoload');
  if (autoload === '0') {
    el.status.textContent = 'Pick a model file to start.';
    $('model-source').open = true;
    return null;
  }
  const asked = autoload !== '1' && localStorage.getItem(CONSENT_KEY) !== 'yes' && !(await modelIsKept(app.modelUrl));
  if (asked) {
    el.status.textContent = 'The model is not on this device yet.';
    el.consent.hidden = false;
    await new Promise((resolve) => el.consentDownload.addEventListener('click', resolve, { once: true }));
    localStorage.setItem(CONSENT_KEY, 'yes');
    el.consent.hidden = true;
  }
  // Kept while the model downloads, so that later visits work offline.
  app.offline = offline.register();
  return loadModel(app.modelUrl, app.modelUrl.split('/').pop()).catch(() => null);
}

async function openStore() {
  try {
    return await openConversations();
  } catch (err) {
    console.warn('[padlock] conversations cannot be kept:', err);
    return null;
  }
}

const keptModels = setupKeptModels({
  list: $('kept-models'),
  status: $('kept-models-status'),
  load: (url, name) => { app.ready = loadModel(url, name).catch(() => null); },
  busy: () => app.state === 'loading' || app.state === 'generating',
});
keptModels.refresh();

setState('idle');
app.modelUrl = modelFromQuery();
{
  const b = new URLSearchParams(location.search).get('backend');
  if (['auto', 'webgpu', 'cpu'].includes(b)) app.backendChoice = b;
  el.backendChoice.value = app.backendChoice;
}
const store = await openStore();
// Filled in below: the panel and the chat need to refresh the list, which needs the chat.
const conversationList = { refresh: async () => {} };
app.memory = setupMemoryPanel({
  client, setState, getState: () => app.state,
  conversations: {
    all: async () => (store ? (await store.list()).conversations : []),
    replace: async (list) => {
      if (!store) return;
      await store.replaceAll(list);
      app.chat.forgotten();
      await conversationList.refresh();
    },
  },
  onForget: async () => {
    localStorage.removeItem(CONSENT_KEY);
    await offline.forget();
    await store?.removeAll();
    app.chat.forgotten();
    await conversationList.refresh();
  },
});
app.chat = setupChat({
  engine: client, el, store, buildRequest, setState, getState: () => app.state, showError, clearError, onAnswer,
  onConversationsChanged: () => conversationList.refresh(),
  onMemoryChanged: () => app.memory.refresh(),
});
Object.assign(conversationList, setupConversationList({
  el: { list: $('conversation-list'), status: $('conversations-status'), deleteAll: $('delete-all-conversations') },
  store, chat: app.chat, showError,
}));
app.compare = setupCompare({
  engine: client,
  el: { button: el.compare, section: $('compare'), baseText: $('compare-base-text'), tokens: $('compare-tokens'),
    personalMeta: $('compare-personal-meta'), detail: $('compare-detail'), summary: $('compare-summary') },
  prompt: el.prompt, conversation: () => app.chat.current(), buildRequest,
  steering: () => app.memory.personalization().method === 'base' ? 'base' : 'personal',
  setState, getState: () => app.state, showError, clearError,
});
// Reloading restores the most recent conversation.
const kept = await conversationList.refresh();
if (kept.length) app.chat.open(kept[0]);
app.ready = start();
