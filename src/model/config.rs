//! The Llama hyper-parameters, read from GGUF metadata and checked against the tensor table,
//! so that the forward pass can index tensors without checking anything itself.

use crate::backend::AttentionShape;
use crate::error::{Error, ErrorCode, Result};
use crate::gguf::{GgmlDType, GgufFile};

/// Sizes beyond these are not a real model but a corrupt or hostile file.
const MAX_LAYERS: usize = 1 << 12;
const MAX_DIM: usize = 1 << 20;
const MAX_CONTEXT: usize = 1 << 24;

#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub n_layers: usize,
    pub hidden: usize,
    pub ffn: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub rope_theta: f32,
    pub rms_eps: f32,
    pub vocab_size: usize,
    pub context_length: usize,
    /// True when there is no `output.weight` (the LM head reuses `token_embd.weight`).
    pub tied_embeddings: bool,
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
        }
    }

    pub fn from_gguf(g: &GgufFile) -> Result<Self> {
        let arch = g.meta_str("general.architecture")?;
        if arch != "llama" {
            return Err(Error::new(
                ErrorCode::UnsupportedArchitecture,
                format!("model architecture {arch:?} is not supported; only \"llama\" is"),
            ));
        }

        let n_layers = read_size(g, "llama.block_count", MAX_LAYERS)?;
        let hidden = read_size(g, "llama.embedding_length", MAX_DIM)?;
        let ffn = read_size(g, "llama.feed_forward_length", MAX_DIM)?;
        let n_heads = read_size(g, "llama.attention.head_count", MAX_DIM)?;
        let n_kv_heads = optional_size(g, "llama.attention.head_count_kv", MAX_DIM)?.unwrap_or(n_heads);
        let context_length = read_size(g, "llama.context_length", MAX_CONTEXT)?;
        let (rope_theta, rms_eps) = read_norm_constants(g)?;
        let head_dim = read_head_dim(g, hidden, n_heads, n_kv_heads)?;
        let vocab_size = read_vocab_size(g)?;
        let config = LlamaConfig {
            n_layers,
            hidden,
            ffn,
            n_heads,
            n_kv_heads,
            head_dim,
            rope_theta,
            rms_eps,
            vocab_size,
            context_length,
            tied_embeddings: g.tensor("output.weight").is_none(),
        };
        config.check_tensors(g)?;
        Ok(config)
    }

    /// Every tensor the forward pass indexes exists with the shape (and, for norms, the type)
    /// this configuration implies.
    fn check_tensors(&self, g: &GgufFile) -> Result<()> {
        let (hidden, ffn, vocab_size) = (self.hidden, self.ffn, self.vocab_size);
        let q_dim = self.n_heads * self.head_dim;
        let kv_dim = self.n_kv_heads * self.head_dim;
        let check = |name: &str, expected: &[usize], norm: bool| -> Result<()> {
            let t = g.tensor(name).ok_or_else(|| config_err(format!("tensor {name:?} is missing")))?;
            if t.dims != expected {
                return Err(config_err(format!("tensor {name:?} has shape {:?}, expected {expected:?}", t.dims)));
            }
            if norm && t.dtype != GgmlDType::F32 {
                return Err(config_err(format!("norm tensor {name:?} is {}, expected F32", t.dtype.name())));
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
            check(&format!("blk.{i}.ffn_norm.weight"), &[hidden], true)?;
            check(&format!("blk.{i}.ffn_gate.weight"), &[hidden, ffn], false)?;
            check(&format!("blk.{i}.ffn_up.weight"), &[hidden, ffn], false)?;
            check(&format!("blk.{i}.ffn_down.weight"), &[ffn, hidden], false)?;
        }
        Ok(())
    }
}

/// RoPE's base frequency (10000 when absent) and the RMS norm's epsilon.
fn read_norm_constants(g: &GgufFile) -> Result<(f32, f32)> {
    let rope_theta = match g.metadata("llama.rope.freq_base") {
        None => 10000.0,
        Some(_) => g.meta_f32("llama.rope.freq_base")?,
    };
    if !(rope_theta.is_finite() && rope_theta > 0.0) {
        return Err(config_err(format!("llama.rope.freq_base = {rope_theta} must be a positive number")));
    }
    let rms_eps = g.meta_f32("llama.attention.layer_norm_rms_epsilon")?;
    if !(rms_eps.is_finite() && rms_eps > 0.0 && rms_eps < 1.0) {
        return Err(config_err(format!("llama.attention.layer_norm_rms_epsilon = {rms_eps} must be in (0, 1)")));
    }
    Ok((rope_theta, rms_eps))
}

/// hidden / heads, checked against the head counts and any rotary or key/value width the file states.
fn read_head_dim(g: &GgufFile, hidden: usize, n_heads: usize, n_kv_heads: usize) -> Result<usize> {
    if !hidden.is_multiple_of(n_heads) {
        return Err(config_err(format!("embedding_length {hidden} is not divisible by head_count {n_heads}")));
    }
    let head_dim = hidden / n_heads;
    if !head_dim.is_multiple_of(2) {
        return Err(config_err(format!("head dimension {head_dim} must be even for RoPE")));
    }
    if n_kv_heads > n_heads || !n_heads.is_multiple_of(n_kv_heads) {
        return Err(config_err(format!("head_count {n_heads} is not a multiple of head_count_kv {n_kv_heads}")));
    }
    // Models whose rotary or key/value width differs from hidden/heads need a different
    // forward pass; refuse them here rather than compute garbage.
    for key in ["llama.rope.dimension_count", "llama.attention.key_length", "llama.attention.value_length"] {
        if let Some(v) = optional_size(g, key, MAX_DIM)? {
            if v != head_dim {
                return Err(config_err(format!(
                    "{key} = {v} differs from the head dimension {head_dim}; not supported"
                )));
            }
        }
    }
    Ok(head_dim)
}

/// `llama.vocab_size`, or the embedding table's second dimension when the file does not say.
fn read_vocab_size(g: &GgufFile) -> Result<usize> {
    let embd =
        g.tensor("token_embd.weight").ok_or_else(|| config_err("tensor \"token_embd.weight\" is missing".into()))?;
    if embd.dims.len() != 2 {
        return Err(config_err(format!(
            "tensor \"token_embd.weight\" should have 2 dimensions [hidden, vocab], found {:?}",
            embd.dims
        )));
    }
    match g.metadata("llama.vocab_size") {
        None => size_in_range("token_embd.weight dims[1]", embd.dims[1] as u64, MAX_DIM),
        Some(_) => read_size(g, "llama.vocab_size", MAX_DIM),
    }
}
