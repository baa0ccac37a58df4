//! The JavaScript `Memory`: the person's preferences and feedback, kept encrypted in
//! IndexedDB on their device (see `crate::memory`).
//!
//! ```js
//! const memory = await Memory.open('padlock-memory', () => console.log('forgotten in another tab'));
//! const p = await memory.add('Keep answers short.', { weight: 1.5 });
//! const r = await memory.generate(runtime, 'How do I boil an egg?', { maxTokens: 128 }, piece => ...);
//! await memory.feedback({ kind: 'thumbs_up', prompt: 'How do I boil an egg?', responses: [r.response] });
//! const file = await memory.export({ passphrase: 'correct horse' });
//! await memory.import(file, { passphrase: 'correct horse' });
//! await memory.forget();
//! ```
//! Every method returns a Promise; errors reject with an `Error` whose `code` is stable.

use std::rc::Rc;

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::chat::{chat_request, ChatCompletion};
use super::{check_generate_keys, from_js, generate_exclusive, js_error, to_js, GenerateResult, Runtime};
use crate::align::PersonalizationOverrides;
use crate::error::{Error, ErrorCode};
use crate::generate::one_turn;
use crate::memory::idb::IdbStore;
use crate::memory::{
    self, FeedbackInput, Preference, PreferenceChange, PreferenceUse, Profile, Response, Source, ValueHead,
};
use crate::tokenizer::ChatMessage;

/// The database name `Memory.open()` uses when given none.
pub const DEFAULT_NAME: &str = "padlock-memory";

type Inner = memory::Memory<IdbStore>;

/// The person's preference memory in this browser.
#[wasm_bindgen]
pub struct Memory {
    inner: Rc<Inner>,
}

/// A preference as the page sees it: the stored fields and the weight PAD uses.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PreferenceView<'a> {
    #[serde(flatten)]
    preference: &'a Preference,
    effective_weight: f64,
}

fn view(p: &Preference) -> PreferenceView<'_> {
    PreferenceView { preference: p, effective_weight: p.effective_weight() }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
struct AddOptions {
    weight: Option<f64>,
    source: Option<Source>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
struct ExportOptions {
    passphrase: Option<String>,
    skip_unreadable: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
struct ImportOptions {
    passphrase: Option<String>,
}

/// What `memory.generate` resolves to: the runtime's result, plus the response as feedback
/// takes it and which preferences steered it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MemoryGenerateResult {
    #[serde(flatten)]
    result: GenerateResult,
    response: Response,
    /// The ids of the preferences whose PersRM contexts scored the answer, in order.
    preferences: Vec<String>,
    /// Every stored preference with its relevance to the request and whether it steered.
    considered: Vec<PreferenceUse>,
    method: crate::align::Method,
}

/// A JSON object from JS, for merging partial settings.
fn json_object(value: JsValue, what: &str) -> Result<serde_json::Map<String, serde_json::Value>, JsValue> {
    match from_js::<Option<serde_json::Value>>(value, what)? {
        None => Ok(Default::default()),
        Some(serde_json::Value::Object(map)) => Ok(map),
        Some(_) => Err(js_error(Error::new(ErrorCode::InvalidArgument, format!("{what} must be an object")))),
    }
}

fn invalid(what: &str, e: impl std::fmt::Display) -> JsValue {
    js_error(Error::new(ErrorCode::InvalidArgument, format!("{what}: {e}")))
}

/// The answer as feedback will see it, with the rewards of the preferences that steered it.
fn response_of(plan: &memory::Personalized, result: &GenerateResult) -> Response {
    plan.response(result.text.clone(), result.generated_ids.len(), &result.sequence_rewards, &result.stop_rewards)
}

impl Memory {
    /// Runs `op` on the memory as a Promise resolving to its JSON-compatible result.
    fn run<F, Fut, T>(&self, op: F) -> js_sys::Promise
    where
        F: FnOnce(Rc<Inner>) -> Fut + 'static,
        Fut: std::future::Future<Output = Result<T, JsValue>> + 'static,
        T: Serialize,
    {
        let inner = self.inner.clone();
        future_to_promise(async move { to_js(&op(inner).await?) })
    }
}

#[wasm_bindgen]
impl Memory {
    /// Opens (creating or upgrading) the memory database `name` (default "padlock-memory").
    /// `onClosed()` is called if another tab forgets the memory; this object is closed then.
    pub async fn open(name: Option<String>, on_closed: Option<js_sys::Function>) -> Result<Memory, JsValue> {
        let name = name.unwrap_or_else(|| DEFAULT_NAME.to_string());
        let notify: Option<Box<dyn Fn()>> = on_closed.map(|f| {
            Box::new(move || {
                let _ = f.call0(&JsValue::NULL);
            }) as Box<dyn Fn()>
        });
        let store = IdbStore::open(&name, notify).await.map_err(js_error)?;
        Ok(Memory { inner: Rc::new(memory::Memory::new(store)) })
    }

    /// The database name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.inner.store().name().to_string()
    }

    /// True once the memory was forgotten (here or in another tab).
    #[wasm_bindgen(getter)]
    pub fn closed(&self) -> bool {
        self.inner.store().is_closed()
    }

    /// `{ preferences: [{ id, text, weight, learned, effectiveWeight, enabled, source, created,
    /// updated }], unreadable: [{ kind, id, error: { code, message } }] }`, the harmlessness
    /// principle first.
    pub fn list(&self) -> js_sys::Promise {
        self.run(|m| async move {
            let loaded = m.preferences().await.map_err(js_error)?;
            let preferences: Vec<PreferenceView> = loaded.items.iter().map(view).collect();
            Ok(serde_json::json!({ "preferences": preferences, "unreadable": loaded.unreadable }))
        })
    }

    /// Adds a preference (`options`: `{ weight, source }`); refused with UNSAFE_PREFERENCE if
    /// it asks to switch safety off. Resolves to the new preference.
    pub fn add(&self, text: String, options: JsValue) -> js_sys::Promise {
        let parsed = from_js::<AddOptions>(options, "add options");
        self.run(move |m| async move {
            let o = parsed?;
            let p = m.add(&text, o.weight, o.source.unwrap_or(Source::Explicit)).await.map_err(js_error)?;
            serde_json::to_value(view(&p)).map_err(|e| invalid("preference", e))
        })
    }

    /// "Remember this": adds `text` as an explicit preference (same as `add`).
    pub fn remember(&self, text: String) -> js_sys::Promise {
        self.add(text, JsValue::UNDEFINED)
    }

    /// Preferences the person's own messages suggest (`messages`: `[{ role, content }]`; only
    /// the user's are read): `[{ text, sentence, message }]`, leaving out what is stored already
    /// and what the screen refuses. Stores nothing: `add` what the person confirms.
    pub fn suggest(&self, messages: JsValue) -> js_sys::Promise {
        let parsed = from_js::<Vec<ChatMessage>>(messages, "messages");
        self.run(move |m| async move {
            let messages = parsed?;
            let stored = m.preferences().await.map_err(js_error)?.items;
            Ok(memory::suggest(&messages, &stored))
        })
    }

    /// The stored preferences `text` says the same as or the opposite of: `[{ id, text,
    /// relation: "same" | "opposite", dimension }]`, to offer a merge or a choice before `add`.
    pub fn related(&self, text: String) -> js_sys::Promise {
        self.run(move |m| async move {
            let stored = m.preferences().await.map_err(js_error)?.items;
            Ok(memory::related(&text, &stored))
        })
    }

    /// Merges the preference `other` into `keep` (two that say the same): `keep` stays, `other`
    /// goes, feedback given to either counts for `keep`. Resolves to the kept preference.
    pub fn merge(&self, keep: String, other: String) -> js_sys::Promise {
        self.run(move |m| async move {
            let p = m.merge(&keep, &other).await.map_err(js_error)?;
            serde_json::to_value(view(&p)).map_err(|e| invalid("preference", e))
        })
    }

    /// Changes a preference: `{ text, weight, enabled, resetLearned }` (each optional).
    pub fn update(&self, id: String, change: JsValue) -> js_sys::Promise {
        let parsed = from_js::<PreferenceChange>(change, "change");
        self.run(move |m| async move {
            let p = m.update(&id, &parsed?).await.map_err(js_error)?;
            serde_json::to_value(view(&p)).map_err(|e| invalid("preference", e))
        })
    }

    pub fn remove(&self, id: String) -> js_sys::Promise {
        self.run(move |m| async move { m.remove(&id).await.map_err(js_error) })
    }

    /// `{ method, beta, candidates, maxActive, baseWithGuideline, sampling: {...} }`.
    pub fn profile(&self) -> js_sys::Promise {
        self.run(|m| async move { m.profile().await.map_err(js_error) })
    }

    /// Changes the fields given (the others keep their values); resolves to the new profile.
    #[wasm_bindgen(js_name = setProfile)]
    pub fn set_profile(&self, change: JsValue) -> js_sys::Promise {
        let parsed = json_object(change, "profile");
        self.run(move |m| async move {
            let change = parsed?;
            let current = m.profile().await.map_err(js_error)?;
            let mut merged = match serde_json::to_value(&current) {
                Ok(serde_json::Value::Object(map)) => map,
                _ => Default::default(),
            };
            for (k, v) in change {
                match (merged.get_mut(&k), v) {
                    (Some(serde_json::Value::Object(inner)), serde_json::Value::Object(v)) => inner.extend(v),
                    (_, v) => {
                        merged.insert(k, v);
                    }
                }
            }
            let profile: Profile =
                serde_json::from_value(serde_json::Value::Object(merged)).map_err(|e| invalid("profile", e))?;
            m.set_profile(&profile).await.map_err(js_error)?;
            Ok(profile)
        })
    }

    /// The feedback log in replay order: `{ events: [...], unreadable: [...] }`.
    pub fn events(&self) -> js_sys::Promise {
        self.run(|m| async move {
            let loaded = m.events().await.map_err(js_error)?;
            Ok(serde_json::json!({ "events": loaded.items, "unreadable": loaded.unreadable }))
        })
    }

    /// Records feedback: `{ kind: 'thumbs_up' | 'thumbs_down' | 'choice' | 'edit', prompt,
    /// responses }` (`responses` as `generate` gave them; for a choice the chosen one first).
    /// Resolves to `{ event, changes: [{ id, before, after }] }`.
    pub fn feedback(&self, input: JsValue) -> js_sys::Promise {
        let parsed = from_js::<Option<FeedbackInput>>(input, "feedback")
            .and_then(|f| f.ok_or_else(|| invalid("feedback", "an object is required")));
        self.run(move |m| async move { m.feedback(parsed?).await.map_err(js_error) })
    }

    /// Recomputes the learned weights by replaying the feedback log; resolves to what changed.
    pub fn rebuild(&self) -> js_sys::Promise {
        self.run(|m| async move { m.rebuild().await.map_err(js_error) })
    }

    /// The preferences that would steer an answer to `messages` (`[{ role, content }]`), in
    /// order; without messages, those that steer every request.
    pub fn active(&self, messages: JsValue) -> js_sys::Promise {
        let messages = from_js::<Option<Vec<ChatMessage>>>(messages, "messages");
        self.run(|m| async move {
            let active = m.active(&messages?.unwrap_or_default()).await.map_err(js_error)?;
            Ok(active.iter().map(view).map(|v| serde_json::to_value(v).unwrap_or_default()).collect::<Vec<_>>())
        })
    }

    /// Answers `prompt` on `runtime`, steered by this memory's active preferences and profile
    /// (`options` as for `runtime.generate`; the profile's decoding settings fill what it
    /// leaves out, and its method, beta, candidates and baseWithGuideline apply unless
    /// `options` gives them). Resolves to the runtime's result plus `response` (what `feedback` takes)
    /// and `preferences` (the ids that steered it).
    pub fn generate(
        &self,
        runtime: &Runtime,
        prompt: String,
        options: JsValue,
        on_token: Option<js_sys::Function>,
    ) -> js_sys::Promise {
        let runtime = runtime.inner.clone();
        let parsed = json_object(options, "options");
        self.run(move |m| async move {
            let profile = m.profile().await.map_err(js_error)?;
            let mut merged = match serde_json::to_value(&profile.sampling) {
                Ok(serde_json::Value::Object(map)) => map,
                _ => Default::default(),
            };
            let parsed = parsed?;
            check_generate_keys(&parsed)?;
            merged.extend(parsed);
            let options: crate::generate::GenerateOptions =
                serde_json::from_value(serde_json::Value::Object(merged.clone())).map_err(|e| invalid("options", e))?;
            // The method, β, k and baseWithGuideline the caller gave win over the profile's.
            let request: PersonalizationOverrides =
                serde_json::from_value(serde_json::Value::Object(merged)).map_err(|e| invalid("options", e))?;
            let asked = [ChatMessage { role: "user".into(), content: prompt.clone() }];
            let plan = m.personalize_with(&options, request, &asked).await.map_err(js_error)?;
            let messages = one_turn(&prompt, plan.options.system.as_deref());
            let result =
                generate_exclusive(&runtime, &messages, false, &plan.options, Some(&plan.plan), on_token.as_ref())
                    .await?;
            let response = response_of(&plan, &result);
            Ok(MemoryGenerateResult {
                result,
                response,
                preferences: plan.preference_ids(),
                considered: plan.considered.clone(),
                method: plan.options.personalization.method,
            })
        })
    }

    /// Answers an OpenAI-style chat request (as `runtime.chat`) steered by this memory's
    /// active preferences and profile when `request.personalization.memory` is true: the
    /// profile's sampling fills what the request leaves out, and the request's method, beta
    /// and candidates win over the profile's. Resolves to a chat completion whose
    /// `personalization` also has `preferences` (the ids) and `response` (what `feedback` takes).
    pub fn chat(&self, runtime: &Runtime, request: JsValue, on_token: Option<js_sys::Function>) -> js_sys::Promise {
        let runtime = runtime.inner.clone();
        let request = chat_request(request);
        self.run(move |m| async move {
            let request = request?;
            let profile = m.profile().await.map_err(js_error)?;
            let options = request.options(&profile.sampling).map_err(js_error)?;
            let overrides = request.personalization.as_ref().map(|p| p.overrides()).unwrap_or_default();
            let plan = m.personalize_with(&options, overrides, &request.messages).await.map_err(js_error)?;
            let result = generate_exclusive(
                &runtime,
                &request.messages,
                true,
                &plan.options,
                Some(&plan.plan),
                on_token.as_ref(),
            )
            .await?;
            let response = response_of(&plan, &result);
            let method = plan.options.personalization.method;
            Ok(ChatCompletion::new(result, method, Some((plan.preference_ids(), plan.considered, response))))
        })
    }

    /// The whole memory as a JSON export file (a string). `options`: `{ passphrase }` seals it
    /// (PBKDF2 + AES-GCM); `{ skipUnreadable: true }` leaves out records that cannot be read
    /// (otherwise their presence is a DECRYPT_FAILED error).
    pub fn export(&self, options: JsValue) -> js_sys::Promise {
        let parsed = from_js::<ExportOptions>(options, "export options");
        self.run(move |m| async move {
            let o = parsed?;
            m.export(o.passphrase.as_deref(), o.skip_unreadable).await.map_err(js_error)
        })
    }

    /// Replaces the whole memory with an export's contents (`options`: `{ passphrase }`).
    /// All or nothing: a malformed, tampered or unsafe file changes nothing. Resolves to
    /// `{ preferences, events, valueHeads }` (the counts imported).
    #[wasm_bindgen(js_name = "import")]
    pub fn import_file(&self, text: String, options: JsValue) -> js_sys::Promise {
        let parsed = from_js::<ImportOptions>(options, "import options");
        self.run(move |m| async move {
            let o = parsed?;
            let c = m.import(&text, o.passphrase.as_deref()).await.map_err(js_error)?;
            Ok(serde_json::json!({
                "preferences": c.preferences.len(), "events": c.events.len(), "valueHeads": c.value_heads.len()
            }))
        })
    }

    /// Stores a trained value head's bytes under `name`.
    #[wasm_bindgen(js_name = putValueHead)]
    pub fn put_value_head(&self, name: String, bytes: Vec<u8>) -> js_sys::Promise {
        self.run(move |m| async move { m.put_value_head(ValueHead { name, bytes }).await.map_err(js_error) })
    }

    /// `[{ name, bytes: Uint8Array }]`.
    #[wasm_bindgen(js_name = valueHeads)]
    pub fn value_heads(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let heads = inner.value_heads().await.map_err(js_error)?;
            let out = js_sys::Array::new();
            for h in heads.items {
                let o = js_sys::Object::new();
                js_sys::Reflect::set(&o, &"name".into(), &h.name.into())?;
                js_sys::Reflect::set(&o, &"bytes".into(), &js_sys::Uint8Array::from(h.bytes.as_slice()))?;
                out.push(&o);
            }
            Ok(out.into())
        })
    }

    #[wasm_bindgen(js_name = removeValueHead)]
    pub fn remove_value_head(&self, name: String) -> js_sys::Promise {
        self.run(move |m| async move { m.remove_value_head(&name).await.map_err(js_error) })
    }

    /// Deletes the whole memory database, after telling the other tabs to close it. This
    /// object is closed afterwards.
    pub fn forget(&self) -> js_sys::Promise {
        self.run(|m| async move { m.forget().await.map_err(js_error) })
    }
}
