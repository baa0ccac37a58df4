// The models kept on this device: the Cache API's "padlock-models" cache, shared by the page
// and the worker. The Cache API rather than OPFS: it stores a Response whole (bytes and the
// headers that say where they came from) in one call, works in workers and pages alike, and
// every browser padlock runs in has it.
//
// A model given with its SHA-256 is kept under that digest (the same file from any URL is one
// entry), else under its URL.

export const MODEL_CACHE = 'padlock-models';

/** The cache key of a model: its SHA-256 when known, else its absolute URL. */
export function modelKey({ url, sha256 }) {
  if (sha256) return new URL(`/.padlock-models/sha256/${sha256.toLowerCase()}`, self.location.origin).href;
  return new URL(String(url), self.location.href).href;
}

/** The models kept on this device: [{ key, url, sha256, bytes }]. */
export async function listModels() {
  if (!self.caches) return [];
  const cache = await self.caches.open(MODEL_CACHE);
  const out = [];
  for (const request of await cache.keys()) {
    const response = await cache.match(request);
    if (!response) continue;
    const bytes = Number(response.headers.get('Content-Length')) || (await response.clone().blob()).size;
    out.push({
      key: request.url,
      url: response.headers.get('X-Padlock-Url') || request.url,
      sha256: response.headers.get('X-Padlock-Sha256') || null,
      bytes,
    });
  }
  return out;
}

/**
 * Deletes a kept model, named by its `key` (from listModels), its SHA-256 or its URL.
 * Resolves to whether there was one.
 */
export async function deleteModel(which) {
  if (!self.caches) return false;
  const cache = await self.caches.open(MODEL_CACHE);
  const text = String(which);
  const keys = /^[0-9a-f]{64}$/i.test(text) ? [modelKey({ sha256: text })] : [text, modelKey({ url: text })];
  let deleted = false;
  for (const key of keys) deleted = (await cache.delete(key)) || deleted;
  return deleted;
}
