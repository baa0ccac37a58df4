//! The hyper-parameters of a Llama-family model (`llama`, `qwen2`, `qwen3`, `gemma2`, `gemma3`), read
//! from GGUF metadata and checked against the tensor table, so that the forward pass can index
//! tensors without checking anything itself. The families differ in a few switches (biases,
//! per-head Q/K norms, RoPE's pairs and frequencies, Gemma's scaled embedding, extra norms,
//! GELU, sliding windows and soft-capping), not in the forward pass.

use crate::backend::{Activation, AttentionShape, Rope, RopePairs, SlidingWindow};
use crate::error::{Error, ErrorCode, Result};
use crate::gguf::{GgmlDType, GgufFile};

/// Sizes beyond these are not a real model but a corrupt or hostile file.
const MAX_LAYERS: usize = 1 << 12;
const MAX_DIM: usize = 1 << 20;
const MAX_CONTEXT: usize = 1 << 24;

/// The architectures (`general.architecture`) the one forward pass runs.
pub const ARCHITECTURES: [&str; 5] = ["llama", "qwen2", "qwen3", "gemma2", "gemma3"];

/// Gemma 3's sliding-window layers rotate with this base, unscaled (llama.cpp).
const GEMMA3_WINDOW_ROPE_THETA: f32 = 10000.0;
/// Gemma 2's soft caps of attention scores and of logits where the file does not say (llama.cpp).
const GEMMA2_SOFT_CAPS: (f32, f32) = (50.0, 30.0);

#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// `general.architecture`, one of [`ARCHITECTURES`]; metadata keys start with it.
    pub architecture: String,
    pub n_layers: usize,
    pub hidden: usize,
    pub ffn: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    /// Query/key width of one head: hidden / heads unless the file says otherwise (Qwen3).
    pub head_dim: usize,
    pub rope: Rope,
    pub rms_eps: f32,
    pub vocab_size: usize,
    pub context_length: usize,
    /// True when there is no `output.weight` (the LM head reuses `token_embd.weight`).
    pub tied_embeddings: bool,
    /// Q, K and V have biases (`attn_{q,k,v}.bias`: Qwen2).
    pub qkv_bias: bool,
    /// Each head of Q and K is RMS-normed before RoPE (`attn_{q,k}_norm`: Qwen3, Gemma 3).
    pub qk_norm: bool,
    /// The feed-forward network's gate: SiLU, or GELU (Gemma).
    pub activation: Activation,
    /// The embeddings are multiplied by this (Gemma: √hidden).
    pub embedding_scale: Option<f32>,
    /// The attention and feed-forward outputs are RMS-normed before the residual add
    /// (`post_attention_norm`, `post_ffw_norm`: Gemma).
    pub post_norms: bool,
    /// What q·k is multiplied by: 1/√head_dim, but for Gemma 2 and 3 27B.
    pub attention_scale: f32,
    /// Layers that see only the latest positions (Gemma), and their RoPE.
    pub window: Option<(SlidingWindow, Rope)>,
    /// Attention scores are soft-capped at this (Gemma 2: cap·tanh(s/cap)).
    pub attention_soft_cap: Option<f32>,
    /// The logits are soft-capped at this (Gemma 2).
    pub final_soft_cap: Option<f32>,
}

fn config_err(msg: String) -> Error {
    Error::new(ErrorCode::ModelConfig, msg)
}

/// Reads an integer key and checks it lies in `1..=max`.
fn read_size(g: &GgufFile, key: &str, max: usize) -> Result<usize> {
    let v = g.meta_u64(key)?;
    size_in_range(key, v, max)
}

fn size_in_range(key: &str, v: u64, max: usize) -> Result<usize> {
    if v == 0 || v > max as u64 {
        return Err(config_err(format!("{key} = {v} is out of range (expected 1..={max})")));
    }
    Ok(v as usize)
}

fn optional_size(g: &GgufFile, key: &str, max: usize) -> Result<Option<usize>> {
    match g.metadata(key) {
        None => Ok(None),
        Some(_) => read_size(g, key, max).map(Some),
    }
}

impl LlamaConfig {
    /// What a backend's KV caches and attention need to know of this model.
    pub fn attention_shape(&self) -> AttentionShape {
        AttentionShape {
            layers: self.n_layers,
            heads: self.n_heads,
            kv_heads: self.n_kv_heads,
            head_dim: self.head_dim,
            scale: self.attention_scale,
            window: self.window.as_ref().map(|(w, _)| *w),
            soft_cap: self.attention_soft_cap,
        }
    }

    /// The RoPE of `layer`: the sliding-window one where the layer has a window.
    pub fn rope(&self, layer: usize) -> &Rope {
        match &self.window {
            Some((_, rope)) if self.attention_shape().window(layer).is_some() => rope,
            _ => &self.rope,
        }
    }

    pub fn from_gguf(g: &GgufFile) -> Result<Self> {
        let arch = g.meta_str("general.architecture")?;
        if !ARCHITECTURES.contains(&arch) {
            return Err(Error::new(
                ErrorCode::UnsupportedArchitecture,
                format!("model architecture {arch:?} is not supported; supported: {}", ARCHITECTURES.join(", ")),
            ));
        }
        let key = |k: &str| format!("{arch}.{k}");
        let n_layers = read_size(g, &key("block_count"), MAX_LAYERS)?;
        let hidden = read_size(g, &key("embedding_length"), MAX_DIM)?;
        let ffn = read_size(g, &key("feed_forward_length"), MAX_DIM)?;
        let n_heads = read_size(g, &key("attention.head_count"), MAX_DIM)?;
        let n_kv_heads = optional_size(g, &key("attention.head_count_kv"), MAX_DIM)?.unwrap_or(n_heads);
        let context_length = read_size(g, &key("context_length"), MAX_CONTEXT)?;
        let head_dim = read_head_dim(g, arch, hidden, n_heads, n_kv_heads)?;
        let rms_eps = read_rms_eps(g, arch)?;
        let pairs = if arch == "llama" { RopePairs::Adjacent } else { RopePairs::Halves };
        let rope = read_rope(g, arch, head_dim, pairs)?;
        let vocab_size = read_vocab_size(g, arch)?;
        let gemma = matches!(arch, "gemma2" | "gemma3");
        let window = read_window(g, arch, &rope)?;
        let (attention_soft_cap, final_soft_cap) = match arch {
            "gemma2" => read_soft_caps(g, arch)?,
            _ => (None, None),
        };
        // llama.cpp's rule: Gemma 2 and 3 27B (46 and 62 layers) scale by 1/√(hidden/heads), as
        // Google's code does.
        let big_gemma = (arch, n_layers) == ("gemma2", 46) || (arch, n_layers) == ("gemma3", 62);
        let scale_width = if big_gemma { hidden / n_heads } else { head_dim };
        let config = LlamaConfig {
            architecture: arch.to_string(),
            n_layers,
            hidden,
            ffn,
            n_heads,
            n_kv_heads,
            head_dim,
            rope,
            rms_eps,
            vocab_size,
            context_length,
            tied_embeddings: g.tensor("output.weight").is_none(),
            qkv_bias: arch == "qwen2" || g.tensor("blk.0.attn_q.bias").is_some(),
            qk_norm: matches!(arch, "qwen3" | "gemma3"),
            activation: if gemma { Activation::GeluTanh } else { Activation::Silu },
            embedding_scale: gemma.then(|| (hidden as f32).sqrt()),
            post_norms: gemma,
            attention_scale: 1.0 / (scale_width as f32).sqrt(),
            window,
            attention_soft_cap,
            final_soft_cap,
        };
        config.check_tensors(g)?;
        Ok(config)
    }

    /// Every tensor the forward pass indexes exists with the shape (and, for norms and biases,
    /// the type) this configuration implies.
    fn check_tensors(&self, g: &GgufFile) -> Result<()> {
        let (hidden, ffn, vocab_size) = (self.hidden, self.ffn, self.vocab_size);
        let q_dim = self.n_heads * self.head_dim;
        let kv_dim = self.n_kv_heads * self.head_dim;
        let check = |name: &str, expected: &[usize], vector: bool| -> Result<()> {
            let t = g.tensor(name).ok_or_else(|| config_err(format!("tensor {name:?} is missing")))?;
            if t.dims != expected {
                return Err(config_err(format!("tensor {name:?} has shape {:?}, expected {expected:?}", t.dims)));
            }
            if vector && t.dtype != GgmlDType::F32 {
                return Err(config_err(format!("tensor {name:?} is {}, expected F32", t.dtype.name())));
            }
            Ok(())
        };

        check("token_embd.weight", &[hidden, vocab_size], false)?;
        check("output_norm.weight", &[hidden], true)?;
        if !self.tied_embeddings {
            check("output.weight", &[hidden, vocab_size], false)?;
        }
        for i in 0..self.n_layers {
            check(&format!("blk.{i}.attn_norm.weight"), &[hidden], true)?;
            check(&format!("blk.{i}.attn_q.weight"), &[hidden, q_dim], false)?;
            check(&format!("blk.{i}.attn_k.weight"), &[hidden, kv_dim], false)?;
            check(&format!("blk.{i}.attn_v.weight"), &[hidden, kv_dim], false)?;
            check(&format!("blk.{i}.attn_output.weight"), &[q_dim, hidden], false)?;
            if self.qkv_bias {
                check(&format!("blk.{i}.attn_q.bias"), &[q_dim], true)?;
                check(&format!("blk.{i}.attn_k.bias"), &[kv_dim], true)?;
                check(&format!("blk.{i}.attn_v.bias"), &[kv_dim], true)?;
            }
            if self.qk_norm {
                check(&format!("blk.{i}.attn_q_norm.weight"), &[self.head_dim], true)?;
                check(&format!("blk.{i}.attn_k_norm.weight"), &[self.head_dim], true)?;
            }
            check(&format!("blk.{i}.ffn_norm.weight"), &[hidden], true)?;
            if self.post_norms {
                check(&format!("blk.{i}.post_attention_norm.weight"), &[hidden], true)?;
                check(&format!("blk.{i}.post_ffw_norm.weight"), &[hidden], true)?;
            }
            check(&format!("blk.{i}.ffn_gate.weight"), &[hidden, ffn], false)?;
            check(&format!("blk.{i}.ffn_up.weight"), &[hidden, ffn], false)?;
            check(&format!("blk.{i}.ffn_down.weight"), &[ffn, hidden], false)?;
        }
        Ok(())
    }
}

/// Gemma's sliding windows: in each run of 2 (Gemma 2) or 6 (Gemma 3) layers all but the last
/// see `attention.sliding_window` positions; Gemma 3 rotates those with base 10000, unscaled.
fn read_window(g: &GgufFile, arch: &str, rope: &Rope) -> Result<Option<(SlidingWindow, Rope)>> {
    let (pattern, window_rope) = match arch {
        "gemma2" => (2, rope.clone()),
        "gemma3" => (6, Rope::plain(GEMMA3_WINDOW_ROPE_THETA).with_pairs(rope.pairs)),
        _ => return Ok(None),
    };
    let size = read_size(g, &format!("{arch}.attention.sliding_window"), MAX_CONTEXT)?;
    Ok(Some((SlidingWindow { size, pattern }, window_rope)))
}

/// A positive f32 setting, `default` when the file does not have it.
fn read_positive(g: &GgufFile, key: &str, default: f32) -> Result<f32> {
    let v = match g.metadata(key) {
        None => return Ok(default),
        Some(_) => g.meta_f32(key)?,
    };
    if !(v.is_finite() && v > 0.0) {
        return Err(config_err(format!("{key} = {v} must be a positive number")));
    }
    Ok(v)
}

/// Gemma 2's soft caps of the attention scores and of the logits.
fn read_soft_caps(g: &GgufFile, arch: &str) -> Result<(Option<f32>, Option<f32>)> {
    let cap = |name: &str, default: f32| read_positive(g, &format!("{arch}.{name}"), default).map(Some);
    Ok((cap("attn_logit_softcapping", GEMMA2_SOFT_CAPS.0)?, cap("final_logit_softcapping", GEMMA2_SOFT_CAPS.1)?))
}

/// The RMS norm's epsilon.
fn read_rms_eps(g: &GgufFile, arch: &str) -> Result<f32> {
    let key = format!("{arch}.attention.layer_norm_rms_epsilon");
    let rms_eps = g.meta_f32(&key)?;
    if !(rms_eps.is_finite() && rms_eps > 0.0 && rms_eps < 1.0) {
        return Err(config_err(format!("{key} = {rms_eps} must be in (0, 1)")));
    }
    Ok(rms_eps)
}

/// RoPE: the base frequency (10000 when absent), linear scaling (`rope.scaling.factor`, or the
/// older `rope.scale_linear`), and Llama 3's per-pair factors (`rope_freqs.weight`). Other
/// scaling types (YaRN, LongRoPE) change more than the frequencies and are refused.
fn read_rope(g: &GgufFile, arch: &str, head_dim: usize, pairs: RopePairs) -> Result<Rope> {
    let theta = read_positive(g, &format!("{arch}.rope.freq_base"), 10000.0)?;
    let scaling_key = format!("{arch}.rope.scaling.type");
    if let Some(kind) = g.metadata(&scaling_key) {
        let kind =
            g.meta_str(&scaling_key).map_err(|_| config_err(format!("{scaling_key} is not a string: {kind:?}")))?;
        if !matches!(kind, "none" | "linear") {
            return Err(config_err(format!("{scaling_key} = {kind:?} is not supported; only linear RoPE scaling is")));
        }
    }
    let factor = read_positive(g, &format!("{arch}.rope.scale_linear"), 1.0)?;
    let factor = read_positive(g, &format!("{arch}.rope.scaling.factor"), factor)?;
    let factors = match g.tensor("rope_freqs.weight") {
        None => None,
        Some(t) => {
            if t.dims != [head_dim / 2] || t.dtype != GgmlDType::F32 {
                return Err(config_err(format!(
                    "tensor \"rope_freqs.weight\" is {} {:?}, expected F32 [{}]",
                    t.dtype.name(),
                    t.dims,
                    head_dim / 2
                )));
            }
            // Empty when only the header was read (`inspect`), which needs no frequencies.
            let values: Vec<f32> =
                g.tensor_data(t).chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            if values.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(config_err(
                    "tensor \"rope_freqs.weight\" holds a value that is not a positive number".into(),
                ));
            }
            Some(values)
        }
    };
    Ok(Rope { theta, scale: 1.0 / factor, factors, pairs })
}

/// The width of a head's queries and keys: `attention.key_length` where the file gives it
/// (Qwen3: 128 with hidden 1024 and 16 heads), else hidden / heads; checked against the head
/// counts and any rotary or value width the file states.
fn read_head_dim(g: &GgufFile, arch: &str, hidden: usize, n_heads: usize, n_kv_heads: usize) -> Result<usize> {
    let key_length = optional_size(g, &format!("{arch}.attention.key_length"), MAX_DIM)?;
    let head_dim = match key_length {
        Some(k) => k,
        None if hidden.is_multiple_of(n_heads) => hidden / n_heads,
        None => {
            return Err(config_err(format!("embedding_length {hidden} is not divisible by head_count {n_heads}")));
        }
    };
    if !head_dim.is_multiple_of(2) {
        return Err(config_err(format!("head dimension {head_dim} must be even for RoPE")));
    }
    if n_kv_heads > n_heads || !n_heads.is_multiple_of(n_kv_heads) {
        return Err(config_err(format!("head_count {n_heads} is not a multiple of head_count_kv {n_kv_heads}")));
    }
    // Models that rotate part of a head, or whose values are another width than their keys,
    // need a different forward pass; refuse them here rather than compute garbage.
    for key in ["rope.dimension_count", "attention.value_length"] {
        let key = format!("{arch}.{key}");
        if let Some(v) = optional_size(g, &key, MAX_DIM)? {
            if v != head_dim {
                return Err(config_err(format!(
                    "{key} = {v} differs from the head dimension {head_dim}; not supported"
                )));
            }
        }
    }
    Ok(head_dim)
}

/// `{arch}.vocab_size`, or the embedding table's second dimension when the file does not say.
fn read_vocab_size(g: &GgufFile, arch: &str) -> Result<usize> {
    let embd =
        g.tensor("token_embd.weight").ok_or_else(|| config_err("tensor \"token_embd.weight\" is missing".into()))?;
    if embd.dims.len() != 2 {
        return Err(config_err(format!(
            "tensor \"token_embd.weight\" should have 2 dimensions [hidden, vocab], found {:?}",
            embd.dims
        )));
    }
    let key = format!("{arch}.vocab_size");
    match g.metadata(&key) {
        None => size_in_range("token_embd.weight dims[1]", embd.dims[1] as u64, MAX_DIM),
        Some(_) => read_size(g, &key, MAX_DIM),
    }
}
