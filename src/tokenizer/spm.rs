//! SentencePiece vocabularies (`tokenizer.ggml.model = "llama"`: Llama 2, Mistral 7B, TinyLlama,
//! Phi-3, Gemma 3), tokenized as llama.cpp's SPM tokenizer does (llama-vocab.cpp), so that the
//! ids are llama.cpp's.
//!
//! Written here rather than with the `tokenizers` crate: a GGUF SPM vocabulary has scores and
//! no merges, and llama.cpp does not run SentencePiece's own algorithm on it either. It
//! repeatedly joins the adjacent pair of pieces whose joined text is the best-scoring token (a
//! priority queue of bigrams), and writes what is left that is no token as `<0xXX>` byte
//! tokens. The crate's BPE needs ranked merges, and its Unigram model finds the best-scoring
//! segmentation overall, which is not always the greedy one.
//!
//! Before that, special tokens (control, unknown and user-defined) are split out of the text,
//! longest first; each remaining run of text gets a leading space when `add_space_prefix` (the
//! SPM default; Gemma files say false), and its spaces are written as U+2581 ("▁").

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use super::tok_err;
use crate::error::Result;
use crate::gguf::{GgufFile, MetaValue};

/// SentencePiece's space.
const SPACE: char = '\u{2581}';

/// What a token is, from `tokenizer.ggml.token_type` (llama.cpp's token attributes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Normal,
    Unknown,
    Control,
    UserDefined,
    /// One of the 256 `<0xXX>` tokens: this byte.
    Byte(u8),
    /// Unused or of no known type: never written when decoding, as in llama.cpp.
    Silent,
}

#[derive(Clone, Debug)]
pub(super) struct Spm {
    /// The tokens' texts; an empty one is `[EMPTY_<id>]`, as llama.cpp names it.
    texts: Vec<String>,
    kinds: Vec<Kind>,
    scores: Vec<f32>,
    /// Every token by text, whatever its type (llama.cpp's `text_to_token`); a duplicated text
    /// keeps its first id.
    ids: HashMap<String, u32>,
    /// The token written for a byte of a character that is no token: `<0xXX>`, else the byte
    /// itself as a token (llama.cpp's `byte_to_token`).
    byte_ids: Vec<Option<u32>>,
    add_space_prefix: bool,
    /// The special tokens (control, unknown, user-defined), found in text before tokenizing.
    specials: Trie,
    /// `rstrip[id]`: the whitespace after this special token is dropped (llama.cpp's Phi-3 rule).
    rstrip: Vec<bool>,
}

impl Spm {
    /// The SPM vocabulary of `tokens`, whose llama.cpp token types are `types`.
    pub(super) fn from_gguf(g: &GgufFile, tokens: &[&str], types: &[i64]) -> Result<Spm> {
        let n = tokens.len();
        let scores = scores(g, n)?;
        let mut texts = Vec::with_capacity(n);
        let mut kinds = Vec::with_capacity(n);
        let mut ids = HashMap::with_capacity(n);
        let mut specials = Trie::default();
        for (id, (&text, &kind)) in tokens.iter().zip(types).enumerate() {
            let text = if text.is_empty() { format!("[EMPTY_{id}]") } else { text.to_owned() };
            let kind = match kind {
                1 => Kind::Normal,
                2 => Kind::Unknown,
                3 => Kind::Control,
                4 => Kind::UserDefined,
                6 => Kind::Byte(
                    byte_of(&text)
                        .ok_or_else(|| tok_err(format!("token {id} ({text:?}) has the byte type but is not <0xXX>")))?,
                ),
                _ => Kind::Silent,
            };
            if matches!(kind, Kind::Unknown | Kind::Control | Kind::UserDefined) {
                specials.insert(text.as_bytes(), id as u32);
            }
            ids.entry(text.clone()).or_insert(id as u32);
            texts.push(text);
            kinds.push(kind);
        }
        let byte_id = |b: u8| {
            let hex = ids.get(&format!("<0x{b:02X}>"));
            // The byte itself as a token: only an ASCII byte is text on its own.
            hex.or_else(|| if b.is_ascii() { ids.get(&char::from(b).to_string()) } else { None }).copied()
        };
        let byte_ids = (0..=255).map(byte_id).collect();
        let rstrip = phi3_rstrip(g, &texts, &kinds);
        let add_space_prefix = super::meta_bool(g, "tokenizer.ggml.add_space_prefix", true)?;
        Ok(Spm { texts, kinds, scores, ids, byte_ids, add_space_prefix, specials, rstrip })
    }

    /// The tokens recognised in text only when control tokens are (control and unknown ones),
    /// with their ids.
    pub(super) fn controls(&self) -> Vec<(String, u32)> {
        let control = |(_, k): &(usize, &Kind)| matches!(k, Kind::Control | Kind::Unknown);
        self.kinds.iter().enumerate().filter(control).map(|(id, _)| (self.texts[id].clone(), id as u32)).collect()
    }

    /// Token ids for `text`; control tokens are recognised in it when `controls`, user-defined
    /// ones always (as llama.cpp's `parse_special` does).
    pub(super) fn encode(&self, text: &str, controls: bool) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for fragment in self.partition(text, controls) {
            match fragment {
                Fragment::Token(id) => ids.push(id),
                Fragment::Text(run) => self.tokenize_run(run, &mut ids)?,
            }
        }
        Ok(ids)
    }

    /// Ids of `text`, with no control token recognised in it, where `text` follows the control
    /// token `after` (or starts the text): the whitespace that token strips is dropped.
    pub(super) fn encode_after(&self, text: &str, after: Option<u32>) -> Result<Vec<u32>> {
        let strip = after.is_some_and(|id| self.rstrip.get(id as usize) == Some(&true));
        self.encode(if strip { text.trim_start_matches(is_c_space) } else { text }, false)
    }

    /// Splits `text` into runs of text and special tokens as llama.cpp's
    /// `tokenizer_st_partition` does: the longer special tokens first, each taking, from the
    /// left, its occurrences in the text that longer ones have not taken.
    fn partition<'t>(&self, text: &'t str, controls: bool) -> Vec<Fragment<'t>> {
        let bytes = text.as_bytes();
        let mut found = self.specials.find_all(bytes);
        found.retain(|&(_, _, id)| controls || self.kinds[id as usize] == Kind::UserDefined);
        found.sort_unstable_by_key(|&(start, len, _)| (Reverse(len), start));
        let mut taken = vec![false; bytes.len()];
        // (start, end of the token and of the whitespace it strips, id)
        let mut tokens = Vec::new();
        for (start, len, id) in found {
            let end = start + len;
            if taken[start..end].iter().any(|&t| t) {
                continue;
            }
            taken[start..end].fill(true);
            let mut resume = end;
            if self.rstrip[id as usize] {
                while resume < bytes.len() && !taken[resume] && is_c_space(char::from(bytes[resume])) {
                    taken[resume] = true;
                    resume += 1;
                }
            }
            tokens.push((start, resume, id));
        }
        tokens.sort_unstable();
        let mut fragments = Vec::with_capacity(2 * tokens.len() + 1);
        let mut pos = 0;
        // Specials are whole UTF-8 sequences and the stripped bytes ASCII: all on char boundaries.
        for (start, resume, id) in tokens {
            if let Some(run) = text.get(pos..start).filter(|r| !r.is_empty()) {
                fragments.push(Fragment::Text(run));
            }
            fragments.push(Fragment::Token(id));
            pos = resume;
        }
        if let Some(run) = text.get(pos..).filter(|r| !r.is_empty()) {
            fragments.push(Fragment::Text(run));
        }
        fragments
    }

    /// Tokenizes one run of text between special tokens (llama.cpp's `llm_tokenizer_spm_session`).
    fn tokenize_run(&self, run: &str, ids: &mut Vec<u32>) -> Result<()> {
        let mut text = String::with_capacity(run.len() + 3);
        if self.add_space_prefix {
            text.push(SPACE);
        }
        text.extend(run.chars().map(|c| if c == ' ' { SPACE } else { c }));

        // One symbol per character, in a linked list; a merged symbol covers its right neighbour.
        let mut symbols: Vec<Symbol> = text
            .char_indices()
            .enumerate()
            .map(|(i, (start, c))| Symbol { start, len: c.len_utf8(), prev: i.checked_sub(1), next: Some(i + 1) })
            .collect();
        if let Some(last) = symbols.last_mut() {
            last.next = None;
        }
        let mut queue = BinaryHeap::new();
        for right in 1..symbols.len() {
            self.push_bigram(&text, &symbols, right - 1, right, &mut queue);
        }
        while let Some(bigram) = queue.pop() {
            let (left, right) = (symbols[bigram.left], symbols[bigram.right]);
            // Stale: one side has been merged away or has grown since.
            if left.len == 0 || right.len == 0 || left.len + right.len != bigram.len {
                continue;
            }
            symbols[bigram.left].len = bigram.len;
            symbols[bigram.left].next = right.next;
            symbols[bigram.right].len = 0;
            if let Some(next) = right.next {
                symbols[next].prev = Some(bigram.left);
            }
            if let Some(prev) = left.prev {
                self.push_bigram(&text, &symbols, prev, bigram.left, &mut queue);
            }
            if let Some(next) = right.next {
                self.push_bigram(&text, &symbols, bigram.left, next, &mut queue);
            }
        }

        let mut at = (!symbols.is_empty()).then_some(0);
        while let Some(i) = at {
            let s = symbols[i];
            let piece = &text[s.start..s.start + s.len];
            // A merged piece is a token by construction; a lone character may not be, and is
            // written as bytes (llama.cpp's `resegment` reduces to this for valid UTF-8).
            match self.ids.get(piece) {
                Some(&id) => ids.push(id),
                None => {
                    for b in piece.bytes() {
                        let id = self.byte_ids[usize::from(b)]
                            .ok_or_else(|| tok_err(format!("the vocabulary has no token for the byte 0x{b:02X}")))?;
                        ids.push(id);
                    }
                }
            }
            at = s.next;
        }
        Ok(())
    }

    /// Queues the joining of `left` and its neighbour `right` if their text is a token.
    fn push_bigram(&self, text: &str, symbols: &[Symbol], left: usize, right: usize, queue: &mut BinaryHeap<Bigram>) {
        let start = symbols[left].start;
        let len = symbols[left].len + symbols[right].len;
        if let Some(&id) = self.ids.get(&text[start..start + len]) {
            queue.push(Bigram { score: self.scores[id as usize], left, right, len });
        }
    }

    /// The bytes token `id` writes when decoding (none for control, unknown and unused
    /// tokens), as llama.cpp's `token_to_piece`; the first token of a text loses the space
    /// `add_space_prefix` put there, as in llama.cpp's `detokenize`.
    pub(super) fn piece(&self, id: u32, first: bool, out: &mut Vec<u8>) {
        let start = out.len();
        let (Some(kind), Some(text)) = (self.kinds.get(id as usize), self.texts.get(id as usize)) else {
            return;
        };
        match *kind {
            Kind::Normal => out.extend_from_slice(text.replace(SPACE, " ").as_bytes()),
            Kind::UserDefined => out.extend_from_slice(text.as_bytes()),
            Kind::Byte(b) => out.push(b),
            Kind::Control | Kind::Unknown | Kind::Silent => {}
        }
        if first && self.add_space_prefix && out.get(start) == Some(&b' ') {
            out.remove(start);
        }
    }
}

/// `tokenizer.ggml.scores` (f32 or integers, as llama.cpp reads them); all 0 when absent.
fn scores(g: &GgufFile, n: usize) -> Result<Vec<f32>> {
    let Some(v) = g.metadata("tokenizer.ggml.scores") else {
        return Ok(vec![0.0; n]);
    };
    let score = |v: &MetaValue| v.as_f32().or_else(|| super::meta_i64(v).map(|x| x as f32)).filter(|s| !s.is_nan());
    let scores: Option<Vec<f32>> = v.as_array().unwrap_or(&[]).iter().map(score).collect();
    match scores {
        Some(s) if s.len() == n => Ok(s),
        _ => Err(tok_err(format!("tokenizer.ggml.scores must be {n} numbers"))),
    }
}

/// The byte of a `<0xXX>` token.
fn byte_of(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    (hex.len() == 2).then(|| u8::from_str_radix(hex, 16).ok()).flatten()
}

/// C's `isspace`, which llama.cpp strips with.
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
}

/// llama.cpp's rule for a model whose `general.name` says Phi-3: the whitespace after every
/// special token but `<unk>`, `<s>` and `<|endoftext|>` is dropped.
fn phi3_rstrip(g: &GgufFile, texts: &[String], kinds: &[Kind]) -> Vec<bool> {
    let name = g.metadata("general.name").and_then(MetaValue::as_str).unwrap_or("").to_lowercase();
    let phi3 = name.contains("phi-3") || name.contains("phi3");
    let special = |k: &Kind| matches!(k, Kind::Unknown | Kind::Control | Kind::UserDefined);
    texts
        .iter()
        .zip(kinds)
        .map(|(t, k)| phi3 && (special(k) || t == "</s>") && !matches!(t.as_str(), "<unk>" | "<s>" | "<|endoftext|>"))
        .collect()
}

/// A run of text between special tokens, or a special token.
enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

#[derive(Clone, Copy, Debug)]
struct Symbol {
    /// Byte offset and length in the escaped text; length 0 once merged into its left neighbour.
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// Two adjacent symbols whose joined text (`len` bytes) is a token of `score`.
#[derive(Debug)]
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    len: usize,
}

/// The best score first, then the leftmost (llama.cpp's `llm_bigram_spm::comparator`).
impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        // Scores are never NaN (`scores` refuses them), so this order is total.
        let by_score = self.score.partial_cmp(&other.score).unwrap_or(Ordering::Equal);
        by_score.then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Bigram {}

/// A byte trie of the special tokens' texts: finds every occurrence of every one in a text in
/// one pass (a GGUF may have thousands of them; Gemma's do).
#[derive(Clone, Debug, Default)]
struct Trie {
    /// (node, next byte) -> node; the root is node 0.
    edges: HashMap<(usize, u8), usize>,
    /// The token whose text ends at a node.
    ends: HashMap<usize, u32>,
    nodes: usize,
}

impl Trie {
    fn insert(&mut self, text: &[u8], id: u32) {
        let mut node = 0;
        for &b in text {
            node = *self.edges.entry((node, b)).or_insert_with(|| {
                self.nodes += 1;
                self.nodes
            });
        }
        self.ends.entry(node).or_insert(id);
    }

    /// Every (start, length, id) of a special token found in `text`.
    fn find_all(&self, text: &[u8]) -> Vec<(usize, usize, u32)> {
        let mut found = Vec::new();
        if self.edges.is_empty() {
            return found;
        }
        for start in 0..text.len() {
            let mut node = 0;
            for (i, &b) in text[start..].iter().enumerate() {
                let Some(&next) = self.edges.get(&(node, b)) else { break };
                node = next;
                if let Some(&id) = self.ends.get(&node) {
                    found.push((start, i + 1, id));
                }
            }
        }
        found
    }
}
