//! Tiny models of every architecture padlock runs, with random weights fixed by a seed and the
//! default model's tokenizer: llama.cpp's logits on the same files (`scripts/tiny_models.py`,
//! recorded in `tests/fixtures/tiny_models.json`) check the forward pass of each family.
#![allow(dead_code)]

use padlock::gguf::{GgufFile, MetaValue};

use crate::gguf_writer::{model_bytes, GgufWriter, V};
use crate::kernels::Rng;

const HIDDEN: u64 = 64;
const FFN: u64 = 128;
const HEADS: u64 = 4;
const KV_HEADS: u64 = 2;
/// Gemma's sliding window here: shorter than the probe tokens, so that it matters.
const GEMMA_WINDOW: u32 = 16;
/// Gemma 2's soft caps of attention scores and logits here: low enough to bend these models'.
const GEMMA2_SOFT_CAPS: (f32, f32) = (2.0, 5.0);

/// One tiny model: what differs from the plain Llama layer.
pub struct TinyModel {
    pub name: &'static str,
    pub architecture: &'static str,
    /// Gemma needs more, to hold a layer without a window after those with one (Gemma 2: one of
    /// two; Gemma 3: one of six).
    pub layers: u64,
    /// The tokenizer's pre-tokenizer name (`tokenizer.ggml.pre`), as the family's files say.
    pub pre: &'static str,
    /// Width of a head; HIDDEN / HEADS unless the family allows otherwise (Qwen3).
    pub head_dim: u64,
    pub rope_theta: f32,
    /// Llama 3: per-pair RoPE factors (`rope_freqs.weight`) and linear scaling.
    pub llama3_rope: bool,
    pub qkv_bias: bool,
    pub qk_norm: bool,
    pub tied: bool,
    /// Type of the matrices: 0 F32, 8 Q8_0 (norms, biases and RoPE factors stay F32).
    pub matrix_type: u32,
}

/// What the models below start from: a two-layer Llama with a tied LM head.
const PLAIN: TinyModel = TinyModel {
    name: "",
    architecture: "llama",
    layers: 2,
    pre: "default",
    head_dim: HIDDEN / HEADS,
    rope_theta: 10000.0,
    llama3_rope: false,
    qkv_bias: false,
    qk_norm: false,
    tied: true,
    matrix_type: 0,
};

const QWEN3: TinyModel = TinyModel {
    name: "qwen3",
    architecture: "qwen3",
    pre: "qwen2",
    head_dim: 32,
    rope_theta: 1e6,
    qk_norm: true,
    ..PLAIN
};

pub const TINY_MODELS: [TinyModel; 6] = [
    TinyModel { name: "llama3", pre: "llama-bpe", rope_theta: 500000.0, llama3_rope: true, tied: false, ..PLAIN },
    TinyModel { name: "qwen2", architecture: "qwen2", pre: "qwen2", rope_theta: 1e6, qkv_bias: true, ..PLAIN },
    QWEN3,
    TinyModel { name: "qwen3-q8_0", tied: false, matrix_type: 8, ..QWEN3 },
    TinyModel { name: "gemma2", architecture: "gemma2", layers: 4, head_dim: 32, ..PLAIN },
    TinyModel {
        name: "gemma3",
        architecture: "gemma3",
        layers: 6,
        head_dim: 32,
        rope_theta: 1e6,
        qk_norm: true,
        ..PLAIN
    },
];

/// A metadata value as the writer takes it.
fn to_v(m: &MetaValue) -> V {
    match m {
        MetaValue::U8(x) => V { tag: 0, bytes: vec![*x] },
        MetaValue::I8(x) => V { tag: 1, bytes: x.to_le_bytes().to_vec() },
        MetaValue::U16(x) => V { tag: 2, bytes: x.to_le_bytes().to_vec() },
        MetaValue::I16(x) => V { tag: 3, bytes: x.to_le_bytes().to_vec() },
        MetaValue::U32(x) => V::u32(*x),
        MetaValue::I32(x) => V::i32(*x),
        MetaValue::F32(x) => V::f32(*x),
        MetaValue::Bool(x) => V::bool(*x),
        MetaValue::String(s) => V::str(s),
        MetaValue::U64(x) => V::u64(*x),
        MetaValue::I64(x) => V { tag: 11, bytes: x.to_le_bytes().to_vec() },
        MetaValue::F64(x) => V { tag: 12, bytes: x.to_le_bytes().to_vec() },
        MetaValue::Array(items) => {
            let tag = items.first().map(|i| to_v(i).tag).unwrap_or(4);
            V::array(tag, &items.iter().map(to_v).collect::<Vec<_>>())
        }
    }
}

/// A tensor's values: matrices uniform in ±0.5, norms near 1, biases and RoPE factors as
/// their families have them.
enum Values {
    Matrix,
    Norm,
    Bias,
    RopeFactors,
}

impl TinyModel {
    fn layout(&self, vocab: u64) -> Vec<(String, Vec<u64>, Values)> {
        let (q_dim, kv_dim) = (HEADS * self.head_dim, KV_HEADS * self.head_dim);
        let mut t = vec![
            ("token_embd.weight".to_string(), vec![HIDDEN, vocab], Values::Matrix),
            ("output_norm.weight".to_string(), vec![HIDDEN], Values::Norm),
        ];
        if !self.tied {
            t.push(("output.weight".into(), vec![HIDDEN, vocab], Values::Matrix));
        }
        if self.llama3_rope {
            t.push(("rope_freqs.weight".into(), vec![self.head_dim / 2], Values::RopeFactors));
        }
        for i in 0..self.layers {
            let mut add = |name: &str, dims: &[u64], v: Values| t.push((format!("blk.{i}.{name}"), dims.to_vec(), v));
            add("attn_norm.weight", &[HIDDEN], Values::Norm);
            add("attn_q.weight", &[HIDDEN, q_dim], Values::Matrix);
            add("attn_k.weight", &[HIDDEN, kv_dim], Values::Matrix);
            add("attn_v.weight", &[HIDDEN, kv_dim], Values::Matrix);
            if self.qkv_bias {
                add("attn_q.bias", &[q_dim], Values::Bias);
                add("attn_k.bias", &[kv_dim], Values::Bias);
                add("attn_v.bias", &[kv_dim], Values::Bias);
            }
            if self.qk_norm {
                add("attn_q_norm.weight", &[self.head_dim], Values::Norm);
                add("attn_k_norm.weight", &[self.head_dim], Values::Norm);
            }
            add("attn_output.weight", &[q_dim, HIDDEN], Values::Matrix);
            add("ffn_norm.weight", &[HIDDEN], Values::Norm);
            add("ffn_gate.weight", &[HIDDEN, FFN], Values::Matrix);
            add("ffn_up.weight", &[HIDDEN, FFN], Values::Matrix);
            add("ffn_down.weight", &[FFN, HIDDEN], Values::Matrix);
            if self.architecture.starts_with("gemma") {
                add("post_attention_norm.weight", &[HIDDEN], Values::Norm);
                add("post_ffw_norm.weight", &[HIDDEN], Values::Norm);
            }
        }
        t
    }

    /// The model's GGUF bytes, with the default model's tokenizer: the same for the same
    /// definition, on every machine.
    pub fn gguf(&self) -> Vec<u8> {
        let default = GgufFile::parse(std::sync::Arc::new(model_bytes().to_vec())).expect("the default model parses");
        let vocab = default.tensor("token_embd.weight").expect("embedding").dims[1] as u64;
        self.build(vocab, Some(&default))
    }

    /// The model with a vocabulary of `vocab` ids and no tokenizer: enough for the forward
    /// pass, where the default model's file cannot be read (wasm).
    pub fn gguf_without_tokenizer(&self, vocab: u64) -> Vec<u8> {
        self.build(vocab, None)
    }

    fn build(&self, vocab: u64, tokenizer: Option<&GgufFile>) -> Vec<u8> {
        let arch = self.architecture;
        let mut w = GgufWriter::new();
        w.set("general.architecture", V::str(arch)).set("general.alignment", V::u32(32));
        w.set("general.name", V::str(&format!("padlock tiny {}", self.name)));
        if let Some(t) = tokenizer {
            for key in t.metadata_keys().filter(|k| k.starts_with("tokenizer.")) {
                w.set(key, to_v(t.metadata(key).expect("key")));
            }
            w.set("tokenizer.ggml.pre", V::str(self.pre));
        }
        let key = |k: &str| format!("{arch}.{k}");
        w.set(&key("block_count"), V::u32(self.layers as u32))
            .set(&key("context_length"), V::u32(256))
            .set(&key("embedding_length"), V::u32(HIDDEN as u32))
            .set(&key("feed_forward_length"), V::u32(FFN as u32))
            .set(&key("attention.head_count"), V::u32(HEADS as u32))
            .set(&key("attention.head_count_kv"), V::u32(KV_HEADS as u32))
            .set(&key("attention.key_length"), V::u32(self.head_dim as u32))
            .set(&key("attention.value_length"), V::u32(self.head_dim as u32))
            .set(&key("rope.dimension_count"), V::u32(self.head_dim as u32))
            .set(&key("rope.freq_base"), V::f32(self.rope_theta))
            .set(&key("attention.layer_norm_rms_epsilon"), V::f32(1e-6));
        if self.llama3_rope {
            w.set(&key("rope.scaling.type"), V::str("linear")).set(&key("rope.scaling.factor"), V::f32(2.0));
        }
        if arch.starts_with("gemma") {
            w.set(&key("attention.sliding_window"), V::u32(GEMMA_WINDOW));
        }
        if arch == "gemma2" {
            w.set(&key("attn_logit_softcapping"), V::f32(GEMMA2_SOFT_CAPS.0))
                .set(&key("final_logit_softcapping"), V::f32(GEMMA2_SOFT_CAPS.1));
        }
        let layout = self.layout(vocab);
        for (name, dims, values) in &layout {
            let ty = if matches!(values, Values::Matrix) { self.matrix_type } else { 0 };
            w.tensor(name, dims, ty);
        }
        let file = GgufFile::parse(std::sync::Arc::new(w.to_bytes())).expect("the tiny model parses");
        let mut bytes = file.bytes().as_ref().clone();
        let mut rng = Rng(self.name.bytes().fold(0x7419, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)));
        for (name, _, values) in &layout {
            let t = file.tensor(name).expect("tensor");
            let n = t.n_elements();
            let v: Vec<f32> = match values {
                Values::Matrix => (0..n).map(|_| rng.f() * 0.5).collect(),
                Values::Norm => (0..n).map(|_| 1.0 + rng.f() * 0.5).collect(),
                Values::Bias => (0..n).map(|_| rng.f() * 0.5).collect(),
                Values::RopeFactors => (0..n).map(|i| 1.0 + (i % 4) as f32 * 2.0).collect(),
            };
            let data =
                if t.dtype.ggml_type() == 8 { q8_0(&v) } else { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
            bytes[t.offset..t.offset + data.len()].copy_from_slice(&data);
        }
        bytes
    }
}

/// Q8_0 blocks of `v` (round to nearest, as ggml's reference quantizer does).
fn q8_0(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() / 32 * 34);
    for block in v.chunks_exact(32) {
        let amax = block.iter().fold(0f32, |m, x| m.max(x.abs()));
        let d = amax / 127.0;
        let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
        out.extend(block.iter().map(|x| (x * inv).round() as i8 as u8));
    }
    out
}

/// The tokens each model is run on: the same for every model, spread over the vocabulary.
pub fn probe_tokens(vocab: usize) -> Vec<u32> {
    let mut rng = Rng(2026);
    (0..48).map(|_| rng.below(vocab) as u32).collect()
}
