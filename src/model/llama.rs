//! The Llama forward pass (RMSNorm, RoPE, grouped-query attention, SwiGLU, tied or
//! separate LM head), written once against `Backend`; Qwen2's Q/K/V biases, Qwen3's per-head
//! Q/K norms and Gemma's scaled embedding, post-norms, GeGLU, sliding windows and
//! soft-capping are optional steps of it.

use crate::backend::{AttentionShape, Backend, LogitsWanted, Segment};
use crate::error::Result;
use crate::gguf::{GgufFile, TensorInfo};
use crate::model::config::LlamaConfig;

struct Layer<W> {
    attn_norm: W,
    wq: W,
    wk: W,
    wv: W,
    /// Biases added to Q, K and V (Qwen2).
    qkv_bias: Option<[W; 3]>,
    /// RMS norms of each head of Q and of K, before RoPE (Qwen3, Gemma 3).
    qk_norm: Option<[W; 2]>,
    wo: W,
    /// RMS norms of the attention and feed-forward outputs, before the residual add (Gemma).
    post_norms: Option<[W; 2]>,
    ffn_norm: W,
    gate: W,
    up: W,
    down: W,
}

pub struct Llama<B: Backend> {
    pub config: LlamaConfig,
    backend: B,
    embedding: B::Weight,
    layers: Vec<Layer<B::Weight>>,
    output_norm: B::Weight,
    /// `None` when the LM head is tied to the embedding table.
    output: Option<B::Weight>,
    passes: std::sync::atomic::AtomicUsize,
    rows: std::sync::atomic::AtomicUsize,
}

/// One sequence's state: its KV cache, the tokens it holds, and the value head its final
/// hidden states pass through before the LM head (PAD's PersRM contexts). The tokens let a
/// later request that starts with them reuse the cache (`Llama::truncate`).
pub struct Sequence<B: Backend> {
    cache: B::KvCache,
    tokens: Vec<u32>,
    head: Option<ValueHead<B>>,
}

/// A `hidden × hidden` matrix W applied to a sequence's final (normed) hidden state h
/// before the LM head: logits = LMHead(W·h). Identity when untrained, so a sequence
/// without one is the plain model. Cheap to clone (shared).
pub struct ValueHead<B: Backend>(std::sync::Arc<B::Weight>);

impl<B: Backend> Clone for ValueHead<B> {
    fn clone(&self) -> Self {
        ValueHead(self.0.clone())
    }
}

impl<B: Backend> Sequence<B> {
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The tokens whose keys and values the cache holds, in order.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Sets the value head the sequence's logits come through.
    pub fn set_head(&mut self, head: Option<ValueHead<B>>) {
        self.head = head;
    }
}

/// Which rows of the batch the LM head is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// The last token of each sequence: `[batch, vocab]`.
    Last,
    /// Every token of every sequence: `[total tokens, vocab]` (for tests and scoring).
    All,
    /// No logits: every token's final normed hidden state, before any value head and the
    /// LM head, `[total tokens, hidden]` (what a value head sees; for training heads).
    Hidden,
}

/// The N results of a call that returns one per input, as an array.
fn exactly<W, const N: usize>(ws: Vec<W>) -> Result<[W; N]> {
    ws.try_into()
        .map_err(|_| crate::Error::new(crate::ErrorCode::Backend, "a backend returned the wrong number of results"))
}

fn one<W>(ws: Vec<W>) -> Result<W> {
    exactly::<W, 1>(ws).map(|[w]| w)
}

/// A weight with a NaN or infinite value would turn every answer into NaN logits: the load
/// fails instead, naming the tensor.
fn check_finite(file: &GgufFile, info: &TensorInfo) -> Result<()> {
    if let Some(at) = info.dtype.first_non_finite(file.tensor_data(info)) {
        let what = if info.dtype.block_size() == 1 { "element" } else { "block" };
        crate::bail!(
            ModelWeights,
            "tensor {} ({}) holds a value that is not finite at {what} {at}",
            info.name,
            info.dtype.name()
        );
    }
    Ok(())
}

impl<B: Backend> Llama<B> {
    /// Validates the file's configuration and hands every weight to the backend.
    /// `progress` receives the fraction of weights loaded, from 0 to 1.
    pub fn load(backend: B, file: &GgufFile, progress: &mut dyn FnMut(f32)) -> Result<Self> {
        let config = LlamaConfig::from_gguf(file)?;
        // `from_gguf` has checked that every tensor named here exists with the right shape.
        let per_layer = 9 + 3 * config.qkv_bias as usize + 2 * config.qk_norm as usize + 2 * config.post_norms as usize;
        let total = 2 + per_layer * config.n_layers + !config.tied_embeddings as usize;
        let mut loaded = 0usize;
        // Weights by name; a list is loaded together (Q/K/V and gate/up, see `load_weights`).
        let mut load = |names: &[String]| -> Result<Vec<B::Weight>> {
            let infos = names
                .iter()
                .map(|name| {
                    file.tensor(name).ok_or_else(|| {
                        crate::error::Error::new(crate::ErrorCode::ModelConfig, format!("missing tensor {name}"))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            for info in &infos {
                check_finite(file, info)?;
            }
            let ws = backend.load_weights(file, &infos)?;
            if ws.len() != names.len() {
                crate::bail!(Backend, "{} weights loaded for {} names", ws.len(), names.len());
            }
            loaded += ws.len();
            progress(loaded as f32 / total as f32);
            Ok(ws)
        };
        let embedding = one(load(&["token_embd.weight".into()])?)?;
        let output_norm = one(load(&["output_norm.weight".into()])?)?;
        let mut layers = Vec::with_capacity(config.n_layers);
        for i in 0..config.n_layers {
            let mut group = |ts: &[&str]| -> Result<Vec<B::Weight>> {
                load(&ts.iter().map(|t| format!("blk.{i}.{t}")).collect::<Vec<_>>())
            };
            let attn_norm = one(group(&["attn_norm.weight"])?)?;
            let [wq, wk, wv] = exactly(group(&["attn_q.weight", "attn_k.weight", "attn_v.weight"])?)?;
            let qkv_bias = match config.qkv_bias {
                true => Some(exactly(group(&["attn_q.bias", "attn_k.bias", "attn_v.bias"])?)?),
                false => None,
            };
            let qk_norm = match config.qk_norm {
                true => Some(exactly(group(&["attn_q_norm.weight", "attn_k_norm.weight"])?)?),
                false => None,
            };
            let wo = one(group(&["attn_output.weight"])?)?;
            let ffn_norm = one(group(&["ffn_norm.weight"])?)?;
            let [gate, up] = exactly(group(&["ffn_gate.weight", "ffn_up.weight"])?)?;
            let down = one(group(&["ffn_down.weight"])?)?;
            let post_norms = match config.post_norms {
                true => Some(exactly(group(&["post_attention_norm.weight", "post_ffw_norm.weight"])?)?),
                false => None,
            };
            layers.push(Layer { attn_norm, wq, wk, wv, qkv_bias, qk_norm, wo, post_norms, ffn_norm, gate, up, down });
        }
        let output = if config.tied_embeddings { None } else { Some(one(load(&["output.weight".into()])?)?) };
        progress(1.0);
        Ok(Llama {
            config,
            backend,
            embedding,
            layers,
            output_norm,
            output,
            passes: Default::default(),
            rows: Default::default(),
        })
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn new_sequence(&self) -> Result<Sequence<B>> {
        Ok(Sequence {
            cache: self.backend.new_kv_cache(&self.config.attention_shape())?,
            tokens: Vec::new(),
            head: None,
        })
    }

    /// Refuses a request whose keys and values (each context's prompt and up to `max_tokens`
    /// more, within the context length) cannot fit where the backend keeps them, before any is
    /// allocated. The caches grow fallibly as well; this catches what cannot fit up front.
    pub fn check_kv_fits(&self, prompts: &[Vec<u32>], seqs: &[Sequence<B>], max_tokens: usize) -> Result<()> {
        let shape = self.config.attention_shape();
        let Some(available) = self.backend().kv_positions_available(&shape) else { return Ok(()) };
        let ctx = self.config.context_length;
        let needed: u64 = prompts
            .iter()
            .zip(seqs)
            .map(|(p, s)| p.len().saturating_add(max_tokens).min(ctx).saturating_sub(s.len()) as u64)
            .sum();
        if needed > available {
            let per_position = shape.kv_bytes_per_position();
            crate::bail!(
                MemoryLimit,
                "this request needs keys and values for {needed} more positions over {} contexts ({} MB), and the \
                 memory can give about {} MB more: ask for fewer tokens (maxTokens) or fewer preferences, or start a \
                 new chat",
                prompts.len(),
                (needed * per_position) >> 20,
                (available * per_position) >> 20
            );
        }
        Ok(())
    }

    /// Keeps the first `len` tokens of `seq` (all of them when it holds fewer).
    pub fn truncate(&self, seq: &mut Sequence<B>, len: usize) -> Result<()> {
        if len < seq.tokens.len() {
            self.backend.truncate_kv_cache(&mut seq.cache, len)?;
            seq.tokens.truncate(len);
        }
        Ok(())
    }

    /// A sequence whose logits come through `head` (see [`ValueHead`]).
    pub fn new_sequence_with_head(&self, head: Option<ValueHead<B>>) -> Result<Sequence<B>> {
        Ok(Sequence { head, ..self.new_sequence()? })
    }

    /// Uploads a value head: `hidden × hidden` f32, row-major, row i giving output i
    /// (so an untrained head is the identity matrix).
    pub fn value_head(&self, matrix: &[f32]) -> Result<ValueHead<B>> {
        let h = self.config.hidden;
        if matrix.len() != h * h {
            crate::bail!(
                InvalidArgument,
                "a value head for hidden size {h} has {} values, got {}",
                h * h,
                matrix.len()
            );
        }
        if matrix.iter().any(|v| !v.is_finite()) {
            crate::bail!(InvalidArgument, "the value head holds a value that is not finite");
        }
        Ok(ValueHead(std::sync::Arc::new(self.backend.load_f32(matrix, h, h)?)))
    }

    /// Feeds `tokens[i]` to `seqs[i]` for every i in one batched pass (each weight is read
    /// once for the whole batch) and returns the logits selected by `which`.
    /// Nothing changes when an error is returned for bad input (unknown token, context full).
    pub fn forward(&self, seqs: &mut [&mut Sequence<B>], tokens: &[&[u32]], which: Logits) -> Result<B::Tensor> {
        self.forward_wanting(seqs, tokens, which, &LogitsWanted::All)
    }

    /// Feeds `tokens[i]` to `seqs[i]` in one batched pass without reading logits back: a
    /// long prompt's first parts, which no token is sampled from.
    pub fn feed(&self, seqs: &mut [&mut Sequence<B>], tokens: &[&[u32]]) -> Result<()> {
        let nothing = LogitsWanted::Top { k: 1, also: Vec::new() };
        self.forward_wanting(seqs, tokens, Logits::Last, &nothing).map(drop)
    }

    /// `forward` where only the logits `wanted` names need be right (see `Backend::lm_head`).
    fn forward_wanting(
        &self,
        seqs: &mut [&mut Sequence<B>],
        tokens: &[&[u32]],
        which: Logits,
        wanted: &LogitsWanted,
    ) -> Result<B::Tensor> {
        let cfg = &self.config;
        let shape = cfg.attention_shape();
        let segments = self.segments(seqs, tokens)?;
        let ids: Vec<u32> = tokens.iter().flat_map(|t| t.iter().copied()).collect();
        let b = &self.backend;
        self.passes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.rows.fetch_add(ids.len(), std::sync::atomic::Ordering::Relaxed);
        let result = (|| {
            let mut caches: Vec<&mut B::KvCache> = seqs.iter_mut().map(|s| &mut s.cache).collect();
            let mut x = b.embed(&self.embedding, &ids)?;
            if let Some(factor) = cfg.embedding_scale {
                x = b.scale(&x, factor)?;
            }
            for (i, layer) in self.layers.iter().enumerate() {
                x = self.layer(i, layer, x, &mut caches, &segments, &shape)?;
            }
            if which == Logits::Last {
                let mut last = Vec::with_capacity(segments.len());
                let mut end = 0;
                for s in &segments {
                    end += s.n_tokens;
                    last.push(end - 1);
                }
                x = b.select_rows(&x, &last)?;
            }
            let mut x = b.rms_norm(&x, &self.output_norm, cfg.rms_eps)?;
            if which == Logits::Hidden {
                return Ok(x);
            }
            if seqs.iter().any(|s| s.head.is_some()) {
                x = self.apply_value_heads(x, seqs, &segments, which)?;
            }
            let logits = b.lm_head(&x, self.output.as_ref().unwrap_or(&self.embedding), wanted)?;
            match cfg.final_soft_cap {
                Some(cap) => b.soft_cap(&logits, cap),
                None => Ok(logits),
            }
        })();
        match result {
            Ok(logits) => {
                for (seq, toks) in seqs.iter_mut().zip(tokens) {
                    seq.tokens.extend_from_slice(toks);
                }
                Ok(logits)
            }
            Err(e) => {
                // Undo any keys/values a failed pass appended, so the sequences are as before.
                for (seq, seg) in seqs.iter_mut().zip(&segments) {
                    self.backend.truncate_kv_cache(&mut seq.cache, seg.start)?;
                }
                Err(e)
            }
        }
    }

    /// Where each sequence's tokens go in the batch, after checking the batch: one non-empty
    /// token list per sequence, within the context and the vocabulary.
    fn segments(&self, seqs: &[&mut Sequence<B>], tokens: &[&[u32]]) -> Result<Vec<Segment>> {
        let cfg = &self.config;
        if seqs.len() != tokens.len() || seqs.is_empty() {
            crate::bail!(InvalidArgument, "{} sequences for {} token lists", seqs.len(), tokens.len());
        }
        let mut segments = Vec::with_capacity(seqs.len());
        for (seq, toks) in seqs.iter().zip(tokens) {
            if toks.is_empty() {
                crate::bail!(InvalidArgument, "a sequence in the batch has no tokens");
            }
            if seq.len() + toks.len() > cfg.context_length {
                crate::bail!(
                    PromptTooLong,
                    "{} tokens after {} already in the context exceed its length of {}",
                    toks.len(),
                    seq.len(),
                    cfg.context_length
                );
            }
            if let Some(&bad) = toks.iter().find(|&&t| t as usize >= cfg.vocab_size) {
                crate::bail!(InvalidArgument, "token id {bad} is outside the vocabulary of {}", cfg.vocab_size);
            }
            segments.push(Segment { start: seq.len(), n_tokens: toks.len() });
        }
        Ok(segments)
    }

    /// One transformer block over the batch: attention (appending to each sequence's cache),
    /// then the feed-forward network, each added to the residual stream `x`.
    fn layer(
        &self,
        i: usize,
        layer: &Layer<B::Weight>,
        mut x: B::Tensor,
        caches: &mut [&mut B::KvCache],
        segments: &[Segment],
        shape: &AttentionShape,
    ) -> Result<B::Tensor> {
        let (b, cfg) = (&self.backend, &self.config);
        let h = b.rms_norm(&x, &layer.attn_norm, cfg.rms_eps)?;
        let [mut q, mut k, mut v] = exactly(b.matmul_many(&h, &[&layer.wq, &layer.wk, &layer.wv])?)?;
        if let Some([bq, bk, bv]) = &layer.qkv_bias {
            (q, k, v) = (b.add_bias(&q, bq)?, b.add_bias(&k, bk)?, b.add_bias(&v, bv)?);
        }
        if let Some([norm_q, norm_k]) = &layer.qk_norm {
            (q, k) = (b.rms_norm(&q, norm_q, cfg.rms_eps)?, b.rms_norm(&k, norm_k, cfg.rms_eps)?);
        }
        let q = b.rope(&q, cfg.n_heads, segments, cfg.rope(i))?;
        let k = b.rope(&k, cfg.n_kv_heads, segments, cfg.rope(i))?;
        let attn = b.attention(i, &q, &k, &v, caches, segments, shape)?;
        let mut attn = b.matmul(&attn, &layer.wo)?;
        if let Some([post_attn, _]) = &layer.post_norms {
            attn = b.rms_norm(&attn, post_attn, cfg.rms_eps)?;
        }
        x = b.add(&x, &attn)?;
        let h = b.rms_norm(&x, &layer.ffn_norm, cfg.rms_eps)?;
        let [gate, up] = exactly(b.matmul_many(&h, &[&layer.gate, &layer.up])?)?;
        let mut ffn = b.matmul(&b.glu(&gate, &up, cfg.activation)?, &layer.down)?;
        if let Some([_, post_ffn]) = &layer.post_norms {
            ffn = b.rms_norm(&ffn, post_ffn, cfg.rms_eps)?;
        }
        x = b.add(&x, &ffn)?;
        Ok(x)
    }

    /// Passes each sequence's rows of the final hidden states through its value head, if it
    /// has one; the rows stay in batch order.
    fn apply_value_heads(
        &self,
        x: B::Tensor,
        seqs: &[&mut Sequence<B>],
        segments: &[Segment],
        which: Logits,
    ) -> Result<B::Tensor> {
        let b = &self.backend;
        let mut parts = Vec::with_capacity(seqs.len());
        let mut row = 0;
        for (seq, seg) in seqs.iter().zip(segments) {
            let n = if which == Logits::Last { 1 } else { seg.n_tokens };
            let rows: Vec<usize> = (row..row + n).collect();
            row += n;
            let part = b.select_rows(&x, &rows)?;
            parts.push(match &seq.head {
                Some(head) => b.matmul(&part, &head.0)?,
                None => part,
            });
        }
        b.concat_rows(&parts.iter().collect::<Vec<_>>())
    }

    /// `forward` with each sequence's last-token logits read back: `[seqs, vocab]` row-major.
    pub async fn forward_batch(&self, seqs: &mut [Sequence<B>], tokens: &[&[u32]]) -> Result<Vec<f32>> {
        self.forward_batch_wanting(seqs, tokens, &LogitsWanted::All).await
    }

    /// [`forward_batch`](Self::forward_batch) where only the logits `wanted` names are
    /// guaranteed (the others may be −∞), so a GPU reads back k values instead of the vocabulary.
    pub async fn forward_batch_wanting(
        &self,
        seqs: &mut [Sequence<B>],
        tokens: &[&[u32]],
        wanted: &LogitsWanted,
    ) -> Result<Vec<f32>> {
        let mut refs: Vec<&mut Sequence<B>> = seqs.iter_mut().collect();
        let logits = self.forward_wanting(&mut refs, tokens, Logits::Last, wanted)?;
        self.backend.read_logits(&logits, wanted).await
    }

    /// How many batched passes this model has run (one per `forward`, however many sequences).
    pub fn passes(&self) -> usize {
        self.passes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many token rows all passes together have fed through the layers (a decode step
    /// of a batch of n sequences feeds n, whatever the length of the text so far).
    pub fn rows_fed(&self) -> usize {
        self.rows.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `forward` for one sequence, reading the logits back to the host.
    pub async fn forward_one(&self, seq: &mut Sequence<B>, tokens: &[u32], which: Logits) -> Result<Vec<f32>> {
        let logits = self.forward(&mut [seq], &[tokens], which)?;
        self.backend.read(&logits).await
    }
}
