//! The JavaScript API (wasm-bindgen). Meant to run inside a Web Worker (see www/worker.js)
//! so the page never freezes; it also works on the main thread.
//!
//! ```js
//! const rt = await Runtime.load(bytes, fraction => ..., { backend: 'auto' });  // or 'webgpu', 'cpu'
//! rt.info().backend;         // 'webgpu' or 'cpu'; info().backendNotice says why when auto fell back
//! const r = await rt.generate('Hi!', { temperature: 0.5, seed: 1 }, (piece, id) => ...);
//! rt.cancel();
//! ```
//! Errors reject with a JS `Error` whose `code` is the stable `ErrorCode` string.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use crate::backend::cpu::{quant, CpuBackend};
#[cfg(feature = "gpu")]
use crate::backend::gpu::GpuBackend;
use crate::backend::Backend;
use crate::error::{Error, ErrorCode};
use crate::generate::{now_seconds, Engine, GenerateOptions, Generation, StopReason};
use crate::model::llama::Logits;

/// A JS `Error` carrying the stable code as `err.code`.
fn js_error(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.message);
    err.set_name("PadlockError");
    let _ = js_sys::Reflect::set(&err, &"code".into(), &e.code.as_str().into());
    err.into()
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_error(Error::new(ErrorCode::InvalidArgument, e.to_string())))
}

/// Lets the event loop run (so a `cancel` message reaches a worker) without the 4 ms
/// clamp of nested timers: a MessageChannel round trip.
async fn yield_to_event_loop() -> Result<(), JsValue> {
    let channel = web_sys::MessageChannel::new()?;
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        channel.port1().set_onmessage(Some(&resolve));
    });
    channel.port2().post_message(&JsValue::NULL)?;
    JsFuture::from(promise).await?;
    channel.port1().set_onmessage(None);
    Ok(())
}

/// The loaded engine on whichever backend was chosen; `with_engine!` runs one code path on either.
enum AnyEngine {
    Cpu(Box<Engine<CpuBackend>>),
    #[cfg(feature = "gpu")]
    Gpu(Box<Engine<GpuBackend>>),
}

macro_rules! with_engine {
    ($any:expr, $e:ident => $body:expr) => {
        match $any {
            AnyEngine::Cpu(boxed) => {
                let $e = &**boxed;
                $body
            }
            #[cfg(feature = "gpu")]
            AnyEngine::Gpu(boxed) => {
                let $e = &**boxed;
                $body
            }
        }
    };
}

struct Inner {
    engine: AnyEngine,
    /// Why the CPU runs although WebGPU was asked for or allowed (`auto`), if it does.
    backend_notice: Option<String>,
    cancel: Cell<bool>,
    busy: Cell<bool>,
}

/// `Runtime.load`'s options: `{ backend: 'auto' | 'webgpu' | 'cpu' }`.
#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LoadOptions {
    backend: Option<String>,
}

#[wasm_bindgen]
pub struct Runtime {
    inner: Rc<Inner>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateResult {
    prompt_ids: Vec<u32>,
    generated_ids: Vec<u32>,
    text: String,
    stop_reason: StopReason,
    prefill_tokens_per_second: f64,
    decode_tokens_per_second: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Info {
    architecture: &'static str,
    layers: usize,
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    vocab_size: usize,
    context_length: usize,
    /// "webgpu" or "cpu".
    backend: &'static str,
    /// The CPU kernel ("simd128"), or the WebGPU adapter's name.
    kernel: String,
    /// Why the CPU is used although WebGPU was allowed (no adapter, ...); null otherwise.
    backend_notice: Option<String>,
}

#[wasm_bindgen]
impl Runtime {
    /// Loads a GGUF model from its bytes. `on_progress(fraction)` is called while the
    /// weights are prepared. `options.backend`: 'auto' (default: WebGPU when the browser has
    /// an adapter, else the CPU), 'webgpu' (fails with GPU_UNAVAILABLE without one) or 'cpu'.
    pub async fn load(bytes: Vec<u8>, on_progress: Option<js_sys::Function>, options: JsValue) -> Result<Runtime, JsValue> {
        let options: LoadOptions = if options.is_undefined() || options.is_null() {
            LoadOptions::default()
        } else {
            serde_wasm_bindgen::from_value(options)
                .map_err(|e| js_error(Error::new(ErrorCode::InvalidArgument, format!("load options: {e}"))))?
        };
        let mut progress = |f: f32| {
            if let Some(cb) = &on_progress {
                let _ = cb.call1(&JsValue::NULL, &JsValue::from_f64(f as f64));
            }
        };
        let bytes = Arc::new(bytes);
        let wanted = options.backend.as_deref().unwrap_or("auto");
        let mut notice = None;
        match wanted {
            "auto" | "webgpu" | "gpu" => {
                #[cfg(feature = "gpu")]
                match GpuBackend::new().await {
                    Ok(gpu) => {
                        let engine = Engine::load(gpu, bytes.clone(), &mut progress).map_err(js_error)?;
                        return Ok(Runtime::new(AnyEngine::Gpu(Box::new(engine)), None));
                    }
                    Err(e) if wanted == "auto" => notice = Some(format!("{}; running on the CPU", e.message)),
                    Err(e) => return Err(js_error(e)),
                }
                #[cfg(not(feature = "gpu"))]
                {
                    let e = Error::new(ErrorCode::GpuUnavailable, "this build of padlock has no WebGPU backend");
                    if wanted != "auto" {
                        return Err(js_error(e));
                    }
                    notice = Some(format!("{}; running on the CPU", e.message));
                }
            }
            "cpu" => {}
            other => {
                return Err(js_error(Error::new(
                    ErrorCode::InvalidArgument,
                    format!("backend {other:?}: expected 'auto', 'webgpu' or 'cpu'"),
                )))
            }
        }
        let engine = Engine::load(CpuBackend::new(), bytes, &mut progress).map_err(js_error)?;
        Ok(Runtime::new(AnyEngine::Cpu(Box::new(engine)), notice))
    }

    fn new(engine: AnyEngine, backend_notice: Option<String>) -> Runtime {
        Runtime { inner: Rc::new(Inner { engine, backend_notice, cancel: Cell::new(false), busy: Cell::new(false) }) }
    }

    /// `{ architecture, layers, hidden, heads, kvHeads, vocabSize, contextLength, backend,
    /// kernel, backendNotice }`.
    pub fn info(&self) -> Result<JsValue, JsValue> {
        let (backend, kernel) = match &self.inner.engine {
            AnyEngine::Cpu(_) => ("cpu", quant::kernel_name().to_string()),
            #[cfg(feature = "gpu")]
            AnyEngine::Gpu(e) => ("webgpu", e.model.backend().info().name.clone()),
        };
        with_engine!(&self.inner.engine, e => {
            let c = &e.model.config;
            to_js(&Info {
                architecture: "llama",
                layers: c.n_layers,
                hidden: c.hidden,
                heads: c.n_heads,
                kv_heads: c.n_kv_heads,
                vocab_size: c.vocab_size,
                context_length: c.context_length,
                backend,
                kernel,
                backend_notice: self.inner.backend_notice.clone(),
            })
        })
    }

    /// Answers one chat message. `options`: `{ maxTokens, greedy, temperature, topP, topK,
    /// repetitionPenalty, repetitionWindow, seed, system }`, all optional. `on_token(piece, id)`
    /// is called for every token. Resolves to `{ promptIds, generatedIds, text, stopReason,
    /// prefillTokensPerSecond, decodeTokensPerSecond }`.
    pub fn generate(&self, prompt: String, options: JsValue, on_token: Option<js_sys::Function>) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let options: GenerateOptions = if options.is_undefined() || options.is_null() {
                GenerateOptions::default()
            } else {
                serde_wasm_bindgen::from_value(options)
                    .map_err(|e| js_error(Error::new(ErrorCode::InvalidArgument, format!("options: {e}"))))?
            };
            if inner.busy.replace(true) {
                return Err(js_error(Error::new(ErrorCode::Busy, "a generation is already running")));
            }
            inner.cancel.set(false);
            let result = with_engine!(&inner.engine, e => run_generation(e, &inner.cancel, &prompt, &options, on_token.as_ref()).await);
            inner.busy.set(false);
            result
        })
    }

    /// Stops a running `generate` before its next token; it resolves with stopReason "cancelled".
    pub fn cancel(&self) {
        self.inner.cancel.set(true);
    }

    /// Logits (vocabSize floats) for the last of `ids`, from a fresh context.
    pub fn logits(&self, ids: Vec<u32>) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let logits = with_engine!(&inner.engine, e => {
                let mut seq = e.model.new_sequence().map_err(js_error)?;
                e.model.forward_one(&mut seq, &ids, Logits::Last).await.map_err(js_error)?
            });
            Ok(js_sys::Float32Array::from(logits.as_slice()).into())
        })
    }

    /// Token ids of `text` (special tokens parsed, no BOS).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, JsValue> {
        with_engine!(&self.inner.engine, e => e.tokenizer.encode(text)).map_err(js_error)
    }
}

async fn run_generation<B: Backend>(
    engine: &Engine<B>,
    cancel: &Cell<bool>,
    prompt: &str,
    options: &GenerateOptions,
    on_token: Option<&js_sys::Function>,
) -> Result<JsValue, JsValue> {
    let t0 = now_seconds();
    let mut gen = Generation::chat(engine, prompt, options).await.map_err(js_error)?;
    let t1 = now_seconds();
    loop {
        yield_to_event_loop().await?;
        if cancel.get() {
            gen.cancel();
        }
        let Some(token) = gen.next().await.map_err(js_error)? else { break };
        if let Some(cb) = on_token {
            let explanation = match &token.explanation {
                Some(e) => to_js(e)?,
                None => JsValue::UNDEFINED,
            };
            cb.call3(&JsValue::NULL, &JsValue::from_str(&token.text), &JsValue::from(token.id), &explanation)?;
        }
    }
    let t2 = now_seconds();
    let n = gen.generated().len();
    to_js(&GenerateResult {
        prompt_ids: gen.prompt_ids().to_vec(),
        generated_ids: gen.generated().to_vec(),
        text: gen.text().map_err(js_error)?,
        stop_reason: gen.stop_reason().unwrap_or(StopReason::Length),
        prefill_tokens_per_second: gen.prompt_ids().len() as f64 / (t1 - t0).max(1e-9),
        decode_tokens_per_second: n as f64 / (t2 - t1).max(1e-9),
    })
}
