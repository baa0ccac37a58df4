// The demo's export file: the package's memory export and the conversations, in one file, so
// export → forget → import gives everything back. With a passphrase the conversations are sealed
// as the memory is (a key derived with PBKDF2-SHA-256, AES-256-GCM); without one they are plain
// text, as the page says before exporting. A memory export made elsewhere imports as it is.

const FORMAT = 'padlock-demo-export';
const ITERATIONS = 600_000;
const AAD = new TextEncoder().encode(`${FORMAT}:conversations`);

// In pieces: a spread of a few megabytes would overflow the call stack.
function toBase64(bytes) {
  const view = new Uint8Array(bytes);
  let binary = '';
  for (let i = 0; i < view.length; i += 0x8000) binary += String.fromCharCode(...view.subarray(i, i + 0x8000));
  return btoa(binary);
}
const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

function fail(code, message) {
  return Object.assign(new Error(message), { code });
}

async function keyFrom(passphrase, salt, iterations) {
  const material = await crypto.subtle.importKey('raw', new TextEncoder().encode(passphrase), 'PBKDF2', false, ['deriveKey']);
  return crypto.subtle.deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, material,
    { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
}

/** The file's text: { format, version, memory (the package's export), conversations: { sealed } or { plain } }. */
export async function makeExport({ memory, conversations, passphrase }) {
  let sealedConversations;
  if (passphrase) {
    const salt = crypto.getRandomValues(new Uint8Array(16));
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const key = await keyFrom(passphrase, salt, ITERATIONS);
    const plain = new TextEncoder().encode(JSON.stringify(conversations));
    const ciphertext = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: AAD }, key, plain);
    sealedConversations = { sealed: { kdf: 'PBKDF2-SHA256', iterations: ITERATIONS, salt: toBase64(salt), iv: toBase64(iv), ciphertext: toBase64(ciphertext) } };
  } else {
    sealedConversations = { plain: conversations };
  }
  return JSON.stringify({ format: FORMAT, version: 1, memory, conversations: sealedConversations });
}

/** Reads a file made by makeExport (or a plain memory export): { memory, conversations (null when the file has none) }. */
export async function readExport(text, passphrase) {
  let file;
  try {
    file = JSON.parse(text);
  } catch {
    return { memory: text, conversations: null }; // not ours: the package's import judges it
  }
  if (file?.format !== FORMAT) return { memory: text, conversations: null };
  if (file.version !== 1 || typeof file.memory !== 'string' || !file.conversations) {
    throw fail('INVALID_IMPORT', 'this demo export is damaged or from a newer version');
  }
  if (file.conversations.plain) return { memory: file.memory, conversations: file.conversations.plain };
  const s = file.conversations.sealed;
  if (!passphrase) throw fail('DECRYPT_FAILED', 'this export is sealed: give its passphrase');
  // A file cannot make this tab derive keys for minutes.
  if (!Number.isInteger(s?.iterations) || s.iterations < 1 || s.iterations > 10_000_000) {
    throw fail('INVALID_IMPORT', 'this demo export names an impossible key derivation');
  }
  try {
    const key = await keyFrom(passphrase, fromBase64(s.salt), s.iterations);
    const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: fromBase64(s.iv), additionalData: AAD }, key, fromBase64(s.ciphertext));
    return { memory: file.memory, conversations: JSON.parse(new TextDecoder().decode(plain)) };
  } catch {
    throw fail('DECRYPT_FAILED', 'the conversations could not be decrypted (wrong passphrase, or the file was altered)');
  }
}
