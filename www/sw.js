// The demo's service worker: keeps the app shell (this page, its modules and the package,
// wasm included) so that after a first visit the site opens and answers with the network off.
// The model is not kept here: the package keeps it in its own cache. Network first, so an
// updated page is used as soon as it is served; the kept copy only when the network fails.
// It also tells the pages how many requests went past it (the page's and the model worker's),
// for the privacy counter.

const SHELL_CACHE = 'padlock-demo-shell-v2';
const SHELL = [
  './', 'index.html', 'style.css', 'app.js', 'chat.js', 'compare.js', 'completion.js', 'conversation-list.js',
  'conversations.js', 'explanation.js', 'export-file.js', 'kept-models.js', 'memory-panel.js', 'offline.js',
  'privacy.js', 'suggestions.js',
  '../pkg/index.js', '../pkg/models.js', '../pkg/worker.js', '../pkg/padlock.js', '../pkg/padlock_bg.wasm',
].map((path) => new URL(path, self.location.href).href);
const SHELL_PATHS = new Set(SHELL.map((href) => new URL(href).pathname));

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith('padlock-demo-shell-') && key !== SHELL_CACHE) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

async function report(url) {
  for (const client of await self.clients.matchAll({ type: 'window' })) {
    client.postMessage({ type: 'padlock-sw-request', url });
  }
}

async function networkFirst(request) {
  const cache = await caches.open(SHELL_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request.url.split('?')[0], response.clone()).catch(() => {});
    return response;
  } catch (err) {
    const kept = await cache.match(request, { ignoreSearch: true }) ??
      (request.mode === 'navigate' ? await cache.match(new URL('./', self.location.href).href) : undefined);
    if (kept) return kept;
    throw err;
  }
}

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin) return;
  event.waitUntil(report(url.href));
  if (event.request.method !== 'GET' || !SHELL_PATHS.has(url.pathname)) return; // the model and the rest: the network, untouched
  event.respondWith(networkFirst(event.request));
});
