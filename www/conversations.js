// The demo's conversations, kept on this device and encrypted at rest.
//
// Each conversation is one IndexedDB record holding only a random id, an IV and AES-GCM
// ciphertext (title, times and messages are all inside). The key is made by WebCrypto as
// non-extractable and stored in the same database as a CryptoKey object: this page can use it,
// but no script can read its bytes, so a copied database or a backup of the profile's files
// does not reveal the messages. It does not protect against someone who controls this browser
// profile (they can run this page). Nothing here makes a network request.

const DB_NAME = 'padlock-conversations';
const DB_VERSION = 1;
const KEYS = 'keys';
const RECORDS = 'conversations';
const KEY_ID = 'conversations-key';

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function openDatabase() {
  const open = indexedDB.open(DB_NAME, DB_VERSION);
  open.onupgradeneeded = () => {
    const db = open.result;
    if (!db.objectStoreNames.contains(KEYS)) db.createObjectStore(KEYS);
    if (!db.objectStoreNames.contains(RECORDS)) db.createObjectStore(RECORDS, { keyPath: 'id' });
  };
  return request(open);
}

function store(db, name, mode = 'readonly') {
  return db.transaction(name, mode).objectStore(name);
}

// The one key, made on first use. Two tabs racing here each make one; `add` lets only the first
// be stored, and the loser reads the winner's.
async function loadKey(db) {
  const kept = await request(store(db, KEYS).get(KEY_ID));
  if (kept) return kept;
  const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  try {
    await request(store(db, KEYS, 'readwrite').add(key, KEY_ID));
    return key;
  } catch {
    return request(store(db, KEYS).get(KEY_ID));
  }
}

// The record's id is the additional authenticated data, so ciphertexts cannot be swapped between records.
const aad = (id) => new TextEncoder().encode(`padlock-conversation:${id}`);

async function seal(key, conversation) {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const plain = new TextEncoder().encode(JSON.stringify(conversation));
  const ciphertext = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: aad(conversation.id) }, key, plain);
  return { id: conversation.id, iv, ciphertext };
}

async function open(key, record) {
  const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: record.iv, additionalData: aad(record.id) }, key, record.ciphertext);
  return JSON.parse(new TextDecoder().decode(plain));
}

/** A new, empty conversation (not stored until it is saved). */
export function newConversation() {
  const now = Date.now();
  return { id: crypto.randomUUID(), title: '', created: now, updated: now, messages: [] };
}

/**
 * Opens the encrypted conversation store. Conversations are { id, title, created, updated,
 * messages: [{ role, content, ... }] }. Returns { list, save, remove, removeAll, close }.
 */
export async function openConversations() {
  const db = await openDatabase();
  const key = await loadKey(db);
  return {
    /** Every readable conversation, the most recently updated first, and the ids that failed to decrypt. */
    async list() {
      const records = await request(store(db, RECORDS).getAll());
      const conversations = [];
      const unreadable = [];
      for (const r of records) {
        try {
          conversations.push(await open(key, r));
        } catch {
          unreadable.push(r.id);
        }
      }
      conversations.sort((a, b) => b.updated - a.updated);
      return { conversations, unreadable };
    },
    async save(conversation) {
      await request(store(db, RECORDS, 'readwrite').put(await seal(key, conversation)));
    },
    async remove(id) {
      await request(store(db, RECORDS, 'readwrite').delete(id));
    },
    async removeAll() {
      await request(store(db, RECORDS, 'readwrite').clear());
    },
    /** Replaces every conversation with `conversations` (an import), in one transaction. */
    async replaceAll(conversations) {
      const sealed = await Promise.all(conversations.map((c) => seal(key, c)));
      const tx = db.transaction(RECORDS, 'readwrite');
      const records = tx.objectStore(RECORDS);
      records.clear();
      for (const r of sealed) records.put(r);
      await new Promise((resolve, reject) => {
        tx.oncomplete = resolve;
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      });
    },
    close() {
      db.close();
    },
  };
}
