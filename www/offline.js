// Offline use: registers the demo's service worker (sw.js), which keeps the app shell so the site
// opens and answers with the network off after a first visit, and relays its count of the
// requests that went past it. Registered only once the person chose to load the model, so a
// visit that never does stores nothing.

const SHELL_PREFIX = 'padlock-demo-shell-';

/** status: the element that says whether offline use is ready; onRequest(url): a request the service worker saw. */
export function setupOffline({ status, onRequest }) {
  const supported = 'serviceWorker' in navigator;
  if (supported) {
    navigator.serviceWorker.addEventListener('message', (e) => {
      if (e.data?.type === 'padlock-sw-request') onRequest(e.data.url);
    });
  }
  status.textContent = supported ? 'not yet (after the model has loaded once)' : 'not available in this browser';

  return {
    async register() {
      if (!supported) return null;
      try {
        // Registered once; later visits leave the update checks to the browser.
        if (!(await navigator.serviceWorker.getRegistration('/'))?.active) {
          // The origin's root: the package's worker (../pkg/worker.js) must be under the scope too,
          // or Chromium fetches its script from the network (the server allows it: Service-Worker-Allowed).
          await navigator.serviceWorker.register('sw.js', { scope: '/' });
        }
        const registration = await navigator.serviceWorker.ready;
        status.textContent = 'ready: this page and the runtime are kept on this device';
        status.dataset.ready = 'true';
        return registration;
      } catch (err) {
        status.textContent = `not available (${err.message || err})`;
        return null;
      }
    },
    /** Removes the service worker and what it kept (part of "Forget everything"). */
    async forget() {
      if (!supported) return;
      for (const r of await navigator.serviceWorker.getRegistrations()) await r.unregister();
      for (const key of await caches.keys()) if (key.startsWith(SHELL_PREFIX)) await caches.delete(key);
      status.textContent = 'not yet (after the model has loaded once)';
      delete status.dataset.ready;
    },
  };
}
