// The conversation on the screen: each Send appends the person's message and streams the answer
// to the whole history (the engine reuses the last turn's caches, so only the new turn is
// prefilled); Stop ends the answer where it is; New chat starts another conversation. Every
// finished turn is saved, encrypted, through the conversation store.
import { newConversation } from './conversations.js';
import { streamCompletion } from './completion.js';
import { setupSuggestions } from './suggestions.js';

const ROLE_NAMES = { user: 'You', assistant: 'padlock' };
// The runtime's fixed harmlessness principle (src/align/values.rs), listed apart from the person's own.
const HARMLESS_PREFIX = 'Be harmless:';

/** What steered an answer, in words, from the completion's personalization report. */
export function steeredBy(report) {
  // Saved preferences this conversation is not about (the memory's relevance gating).
  const unrelated = (report?.considered ?? []).filter((c) => !c.active && c.relevance < 0.5).map((c) => `“${c.text}”`);
  const leftOut = unrelated.length ? ` Not relevant here: ${unrelated.join(', ')}.` : '';
  if (!report || report.method === 'base' || !report.labels?.length) return `Not personalized: the base model alone.${leftOut}`;
  const own = report.labels.filter((l) => !l.startsWith(HARMLESS_PREFIX));
  const how = { pad: 'PAD', prompt: 'preference prompting', 'best-of-n': 'best-of-n' }[report.method] ?? report.method;
  const source = report.preferences ? 'your saved preferences' : 'preferences tried without saving';
  const named = own.length ? own.map((l) => `“${l}”`).join(', ') : 'none of your own';
  return `Steered by ${source} (${how}): ${named} — and the harmlessness principle, always on.${leftOut}`;
}

/**
 * host: { engine, el: { messages, announcer, prompt, send, stop, newChat, stats }, store (or null),
 * buildRequest(messages), getState(), setState(state), showError(err), clearError(),
 * onConversationsChanged(), onAnswer({ messages, result }), onMemoryChanged() }.
 */
export function setupChat(host) {
  const { el } = host;
  let conversation = newConversation();
  let controller = null;
  const suggestions = setupSuggestions({ engine: host.engine, onRemembered: () => host.onMemoryChanged?.() });

  function messageElement(message) {
    const li = document.createElement('li');
    li.className = `message ${message.role}`;
    const who = document.createElement('p');
    who.className = 'role';
    who.textContent = ROLE_NAMES[message.role] ?? message.role;
    const text = document.createElement('div');
    text.className = 'text';
    text.textContent = message.content;
    li.append(who, text);
    if (message.role === 'assistant') {
      const meta = document.createElement('p');
      meta.className = 'meta muted';
      meta.textContent = describeAnswer(message);
      li.append(meta);
    }
    return li;
  }

  function describeAnswer(message) {
    const parts = [];
    if (message.steeredBy) parts.push(message.steeredBy);
    if (message.finishReason === 'cancelled') parts.push('Stopped.');
    if (message.finishReason === 'length') parts.push('Reached the token limit.');
    return parts.join(' ');
  }

  function render() {
    el.messages.replaceChildren(...conversation.messages.map(messageElement));
    el.messages.dataset.conversation = conversation.id;
  }

  async function save() {
    if (!host.store || !conversation.messages.length) return;
    conversation.updated = Date.now();
    conversation.title ||= conversation.messages.find((m) => m.role === 'user')?.content.slice(0, 80) ?? '';
    await host.store.save(conversation);
    host.onConversationsChanged();
  }

  async function send() {
    const text = el.prompt.value.trim();
    if (!text || host.getState() !== 'ready') return;
    host.clearError();
    host.setState('generating');
    conversation.messages.push({ role: 'user', content: text });
    el.prompt.value = '';
    const messages = conversation.messages.map(({ role, content }) => ({ role, content }));
    const answer = { role: 'assistant', content: '' };
    const userEl = messageElement(conversation.messages.at(-1));
    el.messages.append(userEl);
    const answerEl = messageElement(answer);
    answerEl.classList.add('streaming');
    answerEl.setAttribute('aria-busy', 'true');
    el.messages.append(answerEl);
    const textEl = answerEl.querySelector('.text');
    el.stats.textContent = 'Thinking…';
    controller = new AbortController();
    const started = performance.now();
    const request = host.buildRequest(messages);
    try {
      const result = await streamCompletion(host.engine, request, {
        signal: controller.signal,
        onToken: (piece, _explanation, so) => {
          textEl.textContent += piece;
          if (so.count > 1) {
            const seconds = (performance.now() - started - so.firstTokenMs) / 1000;
            el.stats.textContent = `${so.count} tokens · ${((so.count - 1) / seconds).toFixed(1)} tok/s`;
          }
        },
      });
      Object.assign(answer, {
        content: result.text,
        finishReason: result.finishReason,
        steeredBy: result.personalization ? steeredBy(result.personalization) : undefined,
      });
      conversation.messages.push(answer);
      answerEl.replaceWith(messageElement(answer));
      el.announcer.textContent = `padlock answered: ${answer.content}`;
      el.stats.textContent = statsOf(result);
      await save();
      host.onAnswer({ messages, request, result });
      await suggestions.suggestFor(userEl, text);
    } catch (err) {
      answerEl.remove();
      el.stats.textContent = `after ${((performance.now() - started) / 1000).toFixed(1)} s`;
      await save().catch(() => {});
      host.onAnswer({ messages, request, result: null, error: err });
      host.showError(err);
    } finally {
      controller = null;
      // After a crash the engine loads the model again in a new worker: ready once it has.
      const restarting = host.engine.restarting;
      if (restarting) {
        host.setState('loading');
        restarting.then(() => host.setState(host.engine.loaded ? 'ready' : 'error'));
      } else {
        host.setState(host.engine.loaded ? 'ready' : 'error');
      }
    }
  }

  function statsOf(result) {
    const u = result.usage;
    const tokens = u?.completion_tokens ?? result.count;
    return [
      `${tokens} tokens`,
      u && Number.isFinite(u.decode_tokens_per_second) ? `${u.decode_tokens_per_second.toFixed(1)} tok/s` : null,
      u ? `${u.prefilled_tokens?.[0] ?? '?'} of ${u.prompt_tokens} prompt tokens prefilled` : null,
      result.finishReason === 'cancelled' ? 'stopped' : result.finishReason === 'length' ? 'reached the token limit' : null,
    ].filter(Boolean).join(' · ');
  }

  function stop() {
    controller?.abort();
  }

  function open(c) {
    if (host.getState() === 'generating') return;
    conversation = c;
    render();
    host.onAnswer(null);
    host.onConversationsChanged();
  }

  el.send.addEventListener('click', send);
  el.stop.addEventListener('click', stop);
  el.newChat.addEventListener('click', () => {
    open(newConversation());
    el.prompt.focus();
  });
  el.prompt.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      send();
    }
  });

  render();
  return {
    send,
    stop,
    open,
    current: () => conversation,
    /** After the conversation was deleted from the store: start a new one if it was on the screen. */
    forgotten(id) {
      if (id === undefined || conversation.id === id) open(newConversation());
    },
  };
}
