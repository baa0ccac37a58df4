// A page as a developer would write it with padlock-llm: load with progress, a two-turn chat
// (plain and streamed), a personalized turn, an abort, a wrong SHA-256. The test driver
// (tests/consumer/run.mjs) calls window.consumer.* and reads what they return.
import { createEngine, PadlockError, deleteModel, listModels, type ChatMessage, type Engine, type Progress } from 'padlock-llm';

const MODEL = '/models/SmolLM2-135M-Instruct.Q4_1.gguf';
const greedy = { temperature: 0, max_tokens: 24 } as const;

let engine: Engine | null = null;

async function load(): Promise<{ phases: string[]; cached: boolean; backend: string }> {
  const phases: string[] = [];
  engine = await createEngine({
    model: MODEL,
    backend: 'cpu',
    onProgress: (p: Progress) => {
      if (phases[phases.length - 1] !== p.phase) phases.push(p.phase);
    },
  });
  const info = await engine.info();
  return { phases, cached: phases.includes('cache'), backend: info.backend };
}

async function streamed(messages: ChatMessage[]): Promise<{ text: string; chunks: number; finish: string | null }> {
  if (!engine) throw new Error('not loaded');
  let text = '';
  let chunks = 0;
  let finish: string | null = null;
  const stream = await engine.chat.completions.create({ messages, ...greedy, stream: true });
  for await (const chunk of stream) {
    chunks += 1;
    text += chunk.choices[0].delta.content ?? '';
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  return { text, chunks, finish };
}

async function chat() {
  if (!engine) throw new Error('not loaded');
  const messages: ChatMessage[] = [{ role: 'user', content: 'What is the capital of France?' }];
  const first = await engine.chat.completions.create({ messages, ...greedy });
  messages.push(first.choices[0].message, { role: 'user', content: 'And of Italy?' });
  const second = await engine.chat.completions.create({ messages, ...greedy });
  const secondStreamed = await streamed(messages);
  return {
    first: first.choices[0].message.content,
    second: second.choices[0].message.content,
    secondPrefilled: second.usage.prefilled_tokens,
    secondPromptTokens: second.usage.prompt_tokens,
    streamed: secondStreamed,
  };
}

async function personalized() {
  if (!engine) throw new Error('not loaded');
  const r = await engine.chat.completions.create({
    messages: [{ role: 'user', content: 'Describe the sea.' }],
    ...greedy,
    personalization: { preferences: [{ text: 'Answer like a pirate.', weight: 1 }], beta: 2, method: 'pad' },
  });
  // The same request streamed, with each token's explanation on its chunk.
  let streamedText = '';
  let explained = 0;
  const stream = await engine.chat.completions.create({
    messages: [{ role: 'user', content: 'Describe the sea.' }],
    ...greedy,
    stream: true,
    personalization: { preferences: [{ text: 'Answer like a pirate.', weight: 1 }], beta: 2, method: 'pad', explain: true },
  });
  for await (const chunk of stream) {
    streamedText += chunk.choices[0].delta.content ?? '';
    const e = chunk.choices[0].explanation;
    if (e && e.contributions.length === 2) explained += 1;
  }
  return {
    text: r.choices[0].message.content,
    labels: r.personalization.labels,
    method: r.personalization.method,
    tokens: r.usage.completion_tokens,
    streamedText,
    explained,
  };
}

async function memoryChat() {
  if (!engine) throw new Error('not loaded');
  const added = await engine.memory.add('Answer like a pirate.', { weight: 1.5 });
  const { preferences } = await engine.memory.list();
  const r = await engine.chat.completions.create({
    messages: [{ role: 'user', content: 'Describe the sea.' }],
    ...greedy,
    personalization: { memory: true, beta: 3 },
  });
  await engine.memory.remove(added.id);
  return {
    stored: preferences.map((p) => [p.text, p.effectiveWeight]),
    steeredBy: r.personalization.preferences ?? [],
    added: added.id,
    labels: r.personalization.labels,
    method: r.personalization.method,
    rewards: r.personalization.response?.rewards?.length ?? 0,
  };
}

async function abort() {
  if (!engine) throw new Error('not loaded');
  const controller = new AbortController();
  let chunks = 0;
  let error: string | null = null;
  try {
    const stream = await engine.chat.completions.create({
      messages: [{ role: 'user', content: 'Write a long story about a dragon.' }],
      max_tokens: 200,
      stream: true,
      signal: controller.signal,
    });
    for await (const chunk of stream) {
      chunks += chunk.choices[0].delta.content ? 1 : 0;
      if (chunks === 3) controller.abort();
    }
  } catch (e) {
    error = (e as Error).name;
  }
  const after = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], ...greedy });
  return { chunks, error, after: after.choices[0].message.content };
}

async function loadCode() {
  try {
    await load();
    return { code: null, message: '' };
  } catch (e) {
    return { code: e instanceof PadlockError ? e.code : String(e), message: (e as Error).message };
  }
}

async function wrongSha256() {
  try {
    const other = await createEngine({ model: MODEL, backend: 'cpu', sha256: '0'.repeat(64) });
    other.terminate();
    return { code: null };
  } catch (e) {
    return { code: e instanceof PadlockError ? e.code : String(e) };
  }
}

async function unknownKey() {
  if (!engine) throw new Error('not loaded');
  try {
    // A typo a JavaScript caller could make (TypeScript would catch it).
    await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], max_token: 5 } as never);
    return { code: null, message: '' };
  } catch (e) {
    return { code: (e as PadlockError).code, message: (e as Error).message };
  }
}

async function deleteModels() {
  const deleted: boolean[] = [];
  for (const m of await listModels()) deleted.push(await deleteModel(m.key));
  return { deleted, left: (await listModels()).length };
}

declare global {
  interface Window {
    consumer: Record<string, () => Promise<unknown>>;
  }
}
window.consumer = { load, chat, personalized, abort, wrongSha256, unknownKey, models: listModels, deleteModels, loadCode, memoryChat };
document.getElementById('log')!.textContent = 'ready';
