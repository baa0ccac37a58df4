//! A small GGUF writer for tests: builds valid files, and hostile ones by editing the parts.
#![allow(dead_code)]

use std::path::PathBuf;

/// The default model, found at `models/` (or `$PADLOCK_MODEL`). Missing is a failure: the
/// Makefile fetches it before the tests run.
pub fn model_path() -> PathBuf {
    let path = match std::env::var_os("PADLOCK_MODEL") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
    };
    assert!(
        path.is_file(),
        "the default model is missing at {} (`make setup` fetches it; or set PADLOCK_MODEL to a GGUF path)",
        path.display()
    );
    path
}

pub fn model_bytes() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| std::fs::read(model_path()).expect("read the default model"))
}

/// A metadata value: its type tag and its encoded bytes.
#[derive(Clone, Debug)]
pub struct V {
    pub tag: u32,
    pub bytes: Vec<u8>,
}

pub fn enc_str(s: &[u8]) -> Vec<u8> {
    let mut b = (s.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(s);
    b
}

impl V {
    pub fn u32(x: u32) -> V {
        V { tag: 4, bytes: x.to_le_bytes().to_vec() }
    }
    pub fn i32(x: i32) -> V {
        V { tag: 5, bytes: x.to_le_bytes().to_vec() }
    }
    pub fn f32(x: f32) -> V {
        V { tag: 6, bytes: x.to_le_bytes().to_vec() }
    }
    pub fn bool(x: bool) -> V {
        V { tag: 7, bytes: vec![x as u8] }
    }
    pub fn str(s: &str) -> V {
        V { tag: 8, bytes: enc_str(s.as_bytes()) }
    }
    pub fn u64(x: u64) -> V {
        V { tag: 10, bytes: x.to_le_bytes().to_vec() }
    }
    /// An array of values that all have the tag `elem_tag`.
    pub fn array(elem_tag: u32, items: &[V]) -> V {
        let mut b = elem_tag.to_le_bytes().to_vec();
        b.extend_from_slice(&(items.len() as u64).to_le_bytes());
        for it in items {
            b.extend_from_slice(&it.bytes);
        }
        V { tag: 9, bytes: b }
    }
    pub fn strs(items: &[&str]) -> V {
        V::array(8, &items.iter().map(|s| V::str(s)).collect::<Vec<_>>())
    }
    pub fn i32s(items: &[i32]) -> V {
        V::array(5, &items.iter().map(|&x| V::i32(x)).collect::<Vec<_>>())
    }
}

#[derive(Clone, Debug)]
pub struct T {
    pub name: String,
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    /// Relative offset to write instead of the computed one.
    pub offset: Option<u64>,
    pub n_bytes: usize,
}

/// Bytes of a tensor (for unknown types: one byte per element, enough for a test).
pub fn tensor_bytes(ggml_type: u32, dims: &[u64]) -> usize {
    // Saturating: hostile tests build absurd shapes and then override the size.
    let n = dims.iter().fold(1u64, |a, &d| a.saturating_mul(d)).min(usize::MAX as u64) as usize;
    match padlock::gguf::GgmlDType::from_ggml_type(ggml_type) {
        Ok(dt) => (n / dt.block_size()).saturating_mul(dt.block_bytes()),
        Err(_) => n,
    }
}

#[derive(Clone, Debug)]
pub struct GgufWriter {
    pub version: u32,
    pub alignment: usize,
    pub kv: Vec<(String, V)>,
    pub tensors: Vec<T>,
}

impl GgufWriter {
    pub fn new() -> Self {
        GgufWriter { version: 3, alignment: 32, kv: Vec::new(), tensors: Vec::new() }
    }

    pub fn set(&mut self, key: &str, v: V) -> &mut Self {
        match self.kv.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = v,
            None => self.kv.push((key.to_string(), v)),
        }
        self
    }

    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.kv.retain(|(k, _)| k != key);
        self
    }

    pub fn tensor(&mut self, name: &str, dims: &[u64], ggml_type: u32) -> &mut Self {
        self.tensors.retain(|t| t.name != name);
        self.tensors.push(T {
            name: name.to_string(),
            dims: dims.to_vec(),
            ggml_type,
            offset: None,
            n_bytes: tensor_bytes(ggml_type, dims),
        });
        self
    }

    pub fn remove_tensor(&mut self, name: &str) -> &mut Self {
        self.tensors.retain(|t| t.name != name);
        self
    }

    pub fn tensor_mut(&mut self, name: &str) -> &mut T {
        self.tensors.iter_mut().find(|t| t.name == name).expect("no such tensor")
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let align = |x: usize| x.div_ceil(self.alignment) * self.alignment;
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        b.extend_from_slice(&(self.kv.len() as u64).to_le_bytes());
        for (k, v) in &self.kv {
            b.extend_from_slice(&enc_str(k.as_bytes()));
            b.extend_from_slice(&v.tag.to_le_bytes());
            b.extend_from_slice(&v.bytes);
        }
        let mut rel = 0usize;
        let mut data_len = 0usize;
        for t in &self.tensors {
            b.extend_from_slice(&enc_str(t.name.as_bytes()));
            b.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                b.extend_from_slice(&d.to_le_bytes());
            }
            b.extend_from_slice(&t.ggml_type.to_le_bytes());
            b.extend_from_slice(&t.offset.unwrap_or(rel as u64).to_le_bytes());
            rel = align(rel + t.n_bytes);
            data_len = rel;
        }
        b.resize(align(b.len()), 0);
        // Deterministic non-zero filler so that data bytes are not all alike.
        let start = b.len();
        b.extend((0..data_len).map(|i| (i * 7 + 3) as u8));
        debug_assert_eq!(b.len(), start + data_len);
        b
    }
}

/// A small but complete Llama model: 2 layers, hidden 64, 4/2 heads, FFN 96, vocab 32.
pub fn mini_llama() -> GgufWriter {
    let (hidden, ffn, vocab, n_heads, n_kv, layers) = (64u64, 96u64, 32u64, 4u64, 2u64, 2);
    let head_dim = hidden / n_heads;
    let mut w = GgufWriter::new();
    w.set("general.architecture", V::str("llama"))
        .set("general.alignment", V::u32(32))
        .set("llama.block_count", V::u32(layers as u32))
        .set("llama.context_length", V::u32(256))
        .set("llama.embedding_length", V::u32(hidden as u32))
        .set("llama.feed_forward_length", V::u32(ffn as u32))
        .set("llama.attention.head_count", V::u32(n_heads as u32))
        .set("llama.attention.head_count_kv", V::u32(n_kv as u32))
        .set("llama.rope.freq_base", V::f32(10000.0))
        .set("llama.attention.layer_norm_rms_epsilon", V::f32(1e-5))
        .set("general.languages", V::strs(&["en", "fr"]));
    w.tensor("token_embd.weight", &[hidden, vocab], 8);
    w.tensor("output_norm.weight", &[hidden], 0);
    for i in 0..layers {
        let p = format!("blk.{i}.");
        w.tensor(&format!("{p}attn_norm.weight"), &[hidden], 0)
            .tensor(&format!("{p}attn_q.weight"), &[hidden, n_heads * head_dim], 3)
            .tensor(&format!("{p}attn_k.weight"), &[hidden, n_kv * head_dim], 3)
            .tensor(&format!("{p}attn_v.weight"), &[hidden, n_kv * head_dim], 2)
            .tensor(&format!("{p}attn_output.weight"), &[n_heads * head_dim, hidden], 3)
            .tensor(&format!("{p}ffn_norm.weight"), &[hidden], 0)
            .tensor(&format!("{p}ffn_gate.weight"), &[hidden, ffn], 1)
            .tensor(&format!("{p}ffn_up.weight"), &[hidden, ffn], 3)
            .tensor(&format!("{p}ffn_down.weight"), &[ffn, hidden], 3);
    }
    w
}
