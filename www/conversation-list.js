// The list of kept conversations: open one, delete one, or delete them all (after a
// confirmation). The store decrypts them; this module only shows them.

const when = (t) => new Date(t).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' });

/**
 * host: { el: { list, status, deleteAll }, store, chat, showError }. Returns { refresh() }.
 */
export function setupConversationList(host) {
  const { el } = host;

  function item(c, current) {
    const li = document.createElement('li');
    li.dataset.id = c.id;
    if (current) li.setAttribute('aria-current', 'true');
    const open = document.createElement('button');
    open.type = 'button';
    open.className = 'secondary open-conversation';
    open.textContent = c.title || '(untitled)';
    open.title = `${c.messages.length} messages, last ${when(c.updated)}`;
    open.addEventListener('click', () => host.chat.open(c));
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'secondary remove delete-conversation';
    remove.textContent = 'Delete';
    remove.setAttribute('aria-label', `Delete the conversation “${c.title || 'untitled'}”`);
    remove.addEventListener('click', () => act(async () => {
      await host.store.remove(c.id);
      host.chat.forgotten(c.id);
    }));
    li.append(open, remove);
    return li;
  }

  async function act(op) {
    try {
      await op();
    } catch (err) {
      host.showError(err);
    }
    await refresh();
  }

  async function refresh() {
    if (!host.store) {
      el.status.textContent = 'Conversations cannot be kept in this browser (IndexedDB is unavailable).';
      return [];
    }
    const { conversations, unreadable } = await host.store.list();
    const currentId = host.chat.current().id;
    el.list.replaceChildren(...conversations.map((c) => item(c, c.id === currentId)));
    const n = conversations.length;
    el.status.textContent = `${n} conversation${n === 1 ? '' : 's'}, encrypted on this device` +
      (unreadable.length ? ` (${unreadable.length} could not be decrypted)` : '');
    el.deleteAll.disabled = n + unreadable.length === 0;
    return conversations;
  }

  el.deleteAll.addEventListener('click', () => {
    if (!window.confirm('Delete every conversation kept in this browser? This cannot be undone.')) return;
    act(async () => {
      await host.store.removeAll();
      host.chat.forgotten();
    });
  });

  return { refresh };
}
