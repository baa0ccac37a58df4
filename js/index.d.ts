// The types of padlock-llm's public API. The request, result and record types are generated
// from their Rust definitions (tsify, into padlock.d.ts); what is declared here is what only
// the JavaScript side has: the engine, its options, progress, chunks and errors.
import type {
  ChatCompletion,
  ChatMessage,
  ChatRequest,
  Explanation,
  FeedbackEvent,
  FeedbackInput,
  FeedbackOutcome,
  Info,
  PreferenceChange,
  Profile,
  Source,
  StoredPreference,
  Related,
  Suggestion,
  WeightChange,
} from './padlock.js';

export type {
  ChatChoice,
  ChatCompletion,
  ChatMessage,
  ChatPersonalization,
  ChatRequest,
  ChatUsage,
  Explanation,
  FeedbackEvent,
  FeedbackInput,
  FeedbackKind,
  FeedbackOutcome,
  Info,
  Method,
  PersonalizationReport,
  Preference,
  PreferenceChange,
  Profile,
  Response,
  Reward,
  SamplingParams,
  Source,
  StopReason,
  StoredPreference,
  Related,
  Suggestion,
  WeightChange,
} from './padlock.js';

/** The stable error codes a PadlockError carries (the Rust side's and the package's own). */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'MODEL_WEIGHTS'
  | 'PROMPT_TOO_LONG'
  | 'UNSAFE_PREFERENCE'
  | 'GPU_UNAVAILABLE'
  | 'BUSY'
  | 'MODEL_FETCH_FAILED'
  | 'MODEL_INTEGRITY'
  | 'QUOTA_EXCEEDED'
  | 'NOT_LOADED'
  | 'MEMORY_LIMIT'
  | 'STORAGE_BLOCKED'
  | 'MEMORY_KEY_MISSING'
  | 'WORKER_CRASHED'
  | 'TERMINATED'
  | (string & {});

export class PadlockError extends Error {
  readonly code: ErrorCode;
  readonly name: 'PadlockError';
}

/** Where loading stands: downloading, reading the device's copy, checking the SHA-256, preparing the weights. */
export interface Progress {
  phase: 'download' | 'cache' | 'verify' | 'load';
  /** 0..1 */
  fraction: number;
  loaded?: number;
  total?: number;
}

export type ModelSource = string | URL | ArrayBuffer | ArrayBufferView | Blob;

export interface EngineOptions {
  /** A URL (downloaded once, then kept on the device), or the file's bytes. */
  model: ModelSource;
  /** The file's SHA-256 (hex): checked before use (MODEL_INTEGRITY otherwise) and the key it is kept under. */
  sha256?: string;
  /** 'auto' (default): WebGPU when the browser has an adapter (and reads the model), else the CPU. */
  backend?: 'auto' | 'webgpu' | 'cpu';
  /** The longest conversation, in tokens, to plan memory for (default: the model's context, at most 4096): the
   * model's header is read first and the load refused before the weights download (MEMORY_LIMIT) when its weights
   * and the keys and values of this many tokens do not fit. */
  contextLength?: number;
  onProgress?: (progress: Progress) => void;
  /** Ask the browser not to evict the kept model (navigator.storage.persist()); default true. */
  persist?: boolean;
}

/** A chat request as `create` takes it: the Rust `ChatRequest` plus an AbortSignal. */
export type CreateRequest = ChatRequest & { signal?: AbortSignal };

/** One streamed piece of the answer, in OpenAI's chunk shape. */
export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: Array<{
    index: number;
    delta: { role?: 'assistant'; content?: string };
    finish_reason: 'stop' | 'length' | null;
    /** PAD's decision for this token, with `personalization.explain`. */
    explanation?: Explanation;
  }>;
  /** On the last chunk. */
  usage?: ChatCompletion['usage'];
  /** On the last chunk. */
  personalization?: ChatCompletion['personalization'];
}

export interface ChatCompletions {
  create(request: CreateRequest & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
  create(request: CreateRequest & { stream?: false }): Promise<ChatCompletion>;
}

/** A stored preference as the memory API returns it: the record and the weight PAD uses. */
export type PreferenceView = StoredPreference & { effectiveWeight: number };

/** A record the memory could not read (it stays until removed). */
export interface Unreadable {
  kind: 'preferences' | 'events' | 'valueHeads' | 'profile';
  id: string;
  error: { code: ErrorCode; message: string };
}

/** The person's preference memory (IndexedDB, encrypted), running in the engine's worker. */
export interface MemoryApi {
  list(): Promise<{ preferences: PreferenceView[]; unreadable: Unreadable[] }>;
  add(text: string, options?: { weight?: number; source?: Source }): Promise<PreferenceView>;
  remember(text: string): Promise<PreferenceView>;
  update(id: string, change: PreferenceChange): Promise<PreferenceView>;
  remove(id: string): Promise<null>;
  profile(): Promise<Profile>;
  setProfile(change: Partial<Profile>): Promise<Profile>;
  /** The preferences that would steer an answer to `messages` (the harmlessness principle first): the enabled ones
   * relevant to the conversation, or marked `always`, by relevance × weight, at most the profile's `maxActive`.
   * Without messages, those that steer every request. */
  active(messages?: ChatMessage[]): Promise<PreferenceView[]>;
  events(): Promise<{ events: FeedbackEvent[]; unreadable: Unreadable[] }>;
  feedback(input: FeedbackInput): Promise<FeedbackOutcome>;
  rebuild(): Promise<WeightChange[]>;
  /** Preferences the person's own messages suggest (only `user` messages are read), each with the sentence it
   * came from; what is stored already or refused by the screen is left out. Stores nothing: `add` what the
   * person confirms. */
  suggest(messages: ChatMessage[]): Promise<Suggestion[]>;
  /** The stored preferences `text` says the same as (offer a merge) or the opposite of (let the person choose). */
  related(text: string): Promise<Related[]>;
  /** Merges `other` into `keep` (two that say the same): feedback given to either counts for `keep` from now on. */
  merge(keep: string, other: string): Promise<PreferenceView>;
  /** The whole memory as an export file, sealed with the passphrase when given; without one it holds every
   * preference and feedback prompt and answer in plain text (and warns on the console). */
  export(options?: { passphrase?: string; skipUnreadable?: boolean }): Promise<string>;
  import(file: string, options?: { passphrase?: string }): Promise<{ preferences: number; events: number; valueHeads: number }>;
}

export interface KeptModel {
  key: string;
  url: string;
  sha256: string | null;
  bytes: number;
}

export class Engine {
  readonly chat: { completions: ChatCompletions };
  readonly memory: MemoryApi;
  /** Called when another tab forgot the memory. */
  onMemoryClosed: (() => void) | null;
  /** How many times the worker was started again after a crash (a call rejected with WORKER_CRASHED). */
  readonly restarts: number;
  /** While the model loads again in a new worker after a crash; calls made meanwhile wait for it. */
  readonly restarting: Promise<void> | null;
  load(
    source: ModelSource,
    onProgress?: (progress: Progress) => void,
    options?: { backend?: EngineOptions['backend']; sha256?: string; contextLength?: number },
  ): Promise<{ info: Info; bytes: number; loadMs: number; cached: boolean }>;
  info(): Promise<Info>;
  /** Frees the caches the last chat turn kept (the next turn prefills its whole prompt). */
  releaseCaches(): Promise<{ released: number }>;
  /** Stops the running answer at its next token. */
  cancel(): Promise<{ cancelled: boolean }>;
  unload(): Promise<{ unloaded: true }>;
  /** Deletes the preference memory (other tabs close theirs first) and the kept models. */
  forget(): Promise<{ forgotten: true; modelCacheDeleted: boolean }>;
  /** Ends the worker; every pending call rejects with TERMINATED. */
  terminate(): void;
}

/** Starts the engine's worker and loads the model. */
export function createEngine(options: EngineOptions): Promise<Engine>;

/** The models kept on this device. */
export function listModels(): Promise<KeptModel[]>;

/** Deletes a kept model, named by its key, SHA-256 or URL; resolves to whether there was one. */
export function deleteModel(which: string): Promise<boolean>;

