//! The tokenizer and chat template, built from the GGUF's own metadata.
//!
//! Two vocabulary types are supported, with llama.cpp's token ids: SentencePiece
//! (`tokenizer.ggml.model = "llama"`; see `spm.rs`) and byte-level BPE (`"gpt2"`). For BPE the
//! pre-tokenizer depends on `tokenizer.ggml.pre`, as llama.cpp's (llama-vocab.cpp) does:
//! - `"smollm"`: `Split(\p{N}, Isolated)` then `ByteLevel` (the GPT-2 regex); this matches
//!   llama.cpp's ids for SmolLM2.
//! - llama.cpp's LLAMA3 names (`"llama-bpe"`, `"llama3"`, `"llama-v3"`, `"falcon3"`,
//!   `"falcon-h1"`, `"pixtral"`, `"midm-2.0"`, `"lfm2"`, `"jina-v5-nano"`): `Split` with
//!   Llama 3's regex (digits in runs of up to three), then `ByteLevel` without its regex; a
//!   word found whole in the vocabulary is one token, merges or not (`ignore_merges`).
//! - llama.cpp's QWEN2 names (`"qwen2"`, `"deepseek-r1-qwen"`, `"kormo"`, `"f2llmv2"`,
//!   `"megrez"`): the same with single digits, and merges always applied.
//! - anything else: plain `ByteLevel` with the GPT-2 regex. That is exact for GPT-2-style
//!   vocabularies; models whose llama.cpp pre-tokenizer uses another regex will tokenize
//!   slightly differently from llama.cpp until their regex is added here.
//!
//! Control tokens (token_type 3) become special tokens: they are recognised in input text
//! and skipped when decoding. SentencePiece vocabularies also recognise their unknown and
//! user-defined tokens in text, as llama.cpp does.

use std::fmt;

use minijinja::Environment;
use serde::{Deserialize, Serialize};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior};

use crate::error::{Error, ErrorCode, Result};
use crate::gguf::{GgufFile, MetaValue};

mod spm;
mod template;
use spm::Spm;
use template::compile_template;

/// The pre-tokenizer regex of Llama 3 and Qwen2, which differ only in how digits group, as
/// llama.cpp writes it: contractions spelled in both cases, not tokenizer.json's
/// `(?i:'s|...)`, whose Unicode case folding also takes "'ſ" (U+017F, long s) for "'s" where
/// llama.cpp does not.
macro_rules! split_regex {
    ($digits:literal) => {
        concat!(
            r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|",
            $digits,
            r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        )
    };
}
/// Llama 3's: digits in runs of up to three.
const LLAMA3_REGEX: &str = split_regex!(r"\p{N}{1,3}");
/// Qwen2's: every digit on its own.
const QWEN2_REGEX: &str = split_regex!(r"\p{N}");

/// llama.cpp's token type for control tokens.
const TOKEN_TYPE_CONTROL: i64 = 3;
/// End-of-turn markers of the common chat templates (ChatML, Llama 3, Phi-3, Gemma).
const END_OF_TURN: [&str; 4] = ["<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"];
/// One chat message as the template sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

#[derive(Clone)]
pub struct Tokenizer {
    model: Model,
    /// The tokens recognised in text only where control tokens are (not in a message's text),
    /// and their ids.
    controls: Vec<(String, u32)>,
    vocab_size: usize,
    eos: u32,
    /// BOS, where `encode_chat` starts with it (`tokenizer.ggml.add_bos_token`, llama.cpp's
    /// default for SentencePiece: true) and the chat template has not written it.
    add_bos: Option<u32>,
    /// eos plus end-of-turn tokens, sorted.
    stop: Vec<u32>,
    /// `special[id]`: a control token (skipped when decoding).
    special: Vec<bool>,
    bos_token: String,
    eos_token: String,
    /// The compiled chat template, or why there is none.
    chat: std::result::Result<Environment<'static>, Error>,
    /// The system message the template writes when a chat has none.
    default_system: Option<String>,
}

/// The vocabulary and how text is split into its tokens.
#[derive(Clone)]
enum Model {
    /// Byte-level BPE, by the `tokenizers` crate. `text` is the same vocabulary with control
    /// tokens not recognised: what a message's text is encoded with, so that text cannot write
    /// a control token (`encode_chat`).
    Bpe {
        full: Box<tokenizers::Tokenizer>,
        text: Box<tokenizers::Tokenizer>,
    },
    Spm(Box<Spm>),
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size)
            .field("eos", &self.eos)
            .field("stop", &self.stop)
            .field("chat_template", &self.chat.is_ok())
            .finish()
    }
}

fn tok_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::Tokenizer, msg)
}

fn string_array<'a>(g: &'a GgufFile, key: &str) -> Result<Vec<&'a str>> {
    let arr = g
        .metadata(key)
        .ok_or_else(|| tok_err(format!("metadata key {key:?} is missing")))?
        .as_array()
        .ok_or_else(|| tok_err(format!("metadata key {key:?} is not an array")))?;
    arr.iter()
        .map(|v| v.as_str().ok_or_else(|| tok_err(format!("metadata key {key:?} is not an array of strings"))))
        .collect()
}

/// A bool setting; `default` when absent.
fn meta_bool(g: &GgufFile, key: &str, default: bool) -> Result<bool> {
    match g.metadata(key) {
        None => Ok(default),
        Some(MetaValue::Bool(b)) => Ok(*b),
        Some(v) => Err(tok_err(format!("{key} = {v:?} is not a bool"))),
    }
}

fn meta_id(g: &GgufFile, key: &str, vocab_size: usize) -> Result<Option<u32>> {
    match g.metadata(key) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(id) if id < vocab_size as u64 => Ok(Some(id as u32)),
            _ => Err(tok_err(format!("{key} = {v:?} is not a token id below {vocab_size}"))),
        },
    }
}

/// The type of every token (`tokenizer.ggml.token_type`; all normal when absent).
fn token_types(g: &GgufFile, vocab_size: usize) -> Result<Vec<i64>> {
    match g.metadata("tokenizer.ggml.token_type") {
        None => Ok(vec![1; vocab_size]),
        Some(v) => {
            let types: Option<Vec<i64>> = v.as_array().unwrap_or(&[]).iter().map(meta_i64).collect();
            match types {
                Some(t) if t.len() == vocab_size => Ok(t),
                _ => Err(tok_err(format!("tokenizer.ggml.token_type must be {vocab_size} integers"))),
            }
        }
    }
}

/// The pre-tokenizer llama.cpp uses for `pre` (`tokenizer.ggml.pre`), and whether a word found
/// whole in the vocabulary is one token, merges or not (`ignore_merges`, llama.cpp's and
/// Llama 3's tokenizer.json's).
fn pre_tokenizer(pre: &str) -> Result<(PreTokenizerWrapper, bool)> {
    let split = |regex: &str| {
        Split::new(SplitPattern::Regex(regex.into()), SplitDelimiterBehavior::Isolated, false)
            .map_err(|e| tok_err(format!("cannot build the pre-tokenizer for {pre:?}: {e}")))
    };
    // ByteLevel with its own regex, GPT-2's.
    let gpt2 = ByteLevel::new(false, true, true);
    // After a Split with the model's regex, ByteLevel only maps bytes, as in tokenizer.json.
    let bytes = ByteLevel::new(false, true, false);
    Ok(match pre {
        "smollm" => (Sequence::new(vec![split(r"\p{N}")?.into(), gpt2.into()]).into(), false),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2"
        | "jina-v5-nano" => (Sequence::new(vec![split(LLAMA3_REGEX)?.into(), bytes.into()]).into(), true),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" => {
            (Sequence::new(vec![split(QWEN2_REGEX)?.into(), bytes.into()]).into(), false)
        }
        _ => (gpt2.into(), false),
    })
}

/// The byte-level BPE of `tokens` and `merges`, with the pre-tokenizer `pre` names and the
/// control tokens (`special`) added as special tokens.
fn byte_level_bpe(tokens: &[&str], merges: &[&str], pre: &str, special: &[bool]) -> Result<tokenizers::Tokenizer> {
    let mut vocab = Vocab::with_capacity(tokens.len());
    for (id, t) in tokens.iter().enumerate() {
        // A duplicated token string keeps its first id, as llama.cpp's lookup does.
        vocab.entry((*t).to_owned()).or_insert(id as u32);
    }
    let mut merge_pairs = Vec::with_capacity(merges.len());
    for m in merges {
        // Byte-level tokens never contain a space, so the first space separates the pair.
        let (a, b) =
            m.split_once(' ').ok_or_else(|| tok_err(format!("merge {m:?} is not two tokens separated by a space")))?;
        merge_pairs.push((a.to_owned(), b.to_owned()));
    }
    let (pre_tokenizer, ignore_merges) = pre_tokenizer(pre)?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merge_pairs)
        .ignore_merges(ignore_merges)
        .build()
        .map_err(|e| tok_err(format!("cannot build the BPE model: {e}")))?;

    let mut inner = tokenizers::Tokenizer::new(bpe);
    inner.with_pre_tokenizer(Some(pre_tokenizer));
    inner.with_decoder(Some(ByteLevelDecoder::default()));
    let added: Vec<AddedToken> = tokens
        .iter()
        .zip(special)
        // An empty special token would match everywhere; it cannot be real.
        .filter(|(t, &s)| s && !t.is_empty())
        .map(|(t, _)| AddedToken::from(*t, true))
        .collect();
    inner.add_special_tokens(added).map_err(|e| tok_err(format!("cannot add the control tokens: {e}")))?;
    Ok(inner)
}

/// The tokens that end an answer: end-of-text, end-of-turn, and the known end-of-turn markers
/// that are real ones here (control tokens, or written by the chat template).
fn stop_ids(g: &GgufFile, tokens: &[&str], special: &[bool], template: Option<&str>, eos: u32) -> Result<Vec<u32>> {
    let mut stop = vec![eos];
    if let Some(eot) = meta_id(g, "tokenizer.ggml.eot_token_id", tokens.len())? {
        stop.push(eot);
    }
    for name in END_OF_TURN {
        if let Some(id) = tokens.iter().position(|t| *t == name) {
            if special[id] || template.is_some_and(|t| t.contains(name)) {
                stop.push(id as u32);
            }
        }
    }
    stop.sort_unstable();
    stop.dedup();
    Ok(stop)
}

/// The byte-level BPE model of a "gpt2" vocabulary, and its control tokens with their ids.
fn bpe_model(g: &GgufFile, tokens: &[&str], special: &[bool]) -> Result<(Model, Vec<(String, u32)>)> {
    let pre = g.metadata("tokenizer.ggml.pre").and_then(MetaValue::as_str).unwrap_or("default");
    let merges = string_array(g, "tokenizer.ggml.merges")?;
    let full = byte_level_bpe(tokens, &merges, pre, special)?;
    let mut text = full.clone();
    text.set_encode_special_tokens(true);
    let controls = full
        .get_added_tokens_decoder()
        .into_iter()
        .filter(|(_, t)| !t.content.is_empty())
        .map(|(id, t)| (t.content, id))
        .collect();
    Ok((Model::Bpe { full: Box::new(full), text: Box::new(text) }, controls))
}

impl Tokenizer {
    pub fn from_gguf(g: &GgufFile) -> Result<Self> {
        let kind = g
            .metadata("tokenizer.ggml.model")
            .and_then(MetaValue::as_str)
            .ok_or_else(|| tok_err("metadata key \"tokenizer.ggml.model\" is missing or not a string"))?;
        if kind != "gpt2" && kind != "llama" {
            return Err(tok_err(format!(
                "tokenizer model {kind:?} is not supported; only BPE (\"gpt2\") and SentencePiece (\"llama\") are"
            )));
        }
        let tokens = string_array(g, "tokenizer.ggml.tokens")?;
        if tokens.is_empty() || tokens.len() > u32::MAX as usize {
            return Err(tok_err(format!("vocabulary of {} tokens is not usable", tokens.len())));
        }
        let vocab_size = tokens.len();
        let types = token_types(g, vocab_size)?;
        let special: Vec<bool> = types.iter().map(|&t| t == TOKEN_TYPE_CONTROL).collect();
        let is_spm = kind == "llama";
        let (model, controls) = if is_spm {
            let spm = Spm::from_gguf(g, &tokens, &types)?;
            let controls = spm.controls();
            (Model::Spm(Box::new(spm)), controls)
        } else {
            bpe_model(g, &tokens, &special)?
        };

        // llama.cpp's defaults for a SentencePiece file without these keys: BOS 1, EOS 2.
        let spm_default = |id: u32| (is_spm && (id as usize) < vocab_size).then_some(id);
        let eos = match meta_id(g, "tokenizer.ggml.eos_token_id", vocab_size)?.or_else(|| spm_default(2)) {
            Some(id) => id,
            None => ["<|endoftext|>", "</s>", "<|end_of_text|>"]
                .iter()
                .find_map(|t| tokens.iter().position(|x| x == t))
                .map(|id| id as u32)
                .ok_or_else(|| tok_err("no tokenizer.ggml.eos_token_id and no known end-of-text token"))?,
        };
        let bos = meta_id(g, "tokenizer.ggml.bos_token_id", vocab_size)?.or_else(|| spm_default(1));
        let add_bos = if meta_bool(g, "tokenizer.ggml.add_bos_token", is_spm)? { bos } else { None };
        let template = g.metadata("tokenizer.chat_template").and_then(MetaValue::as_str);
        let stop = stop_ids(g, &tokens, &special, template, eos)?;
        let chat = match template {
            None => Err(Error::new(ErrorCode::ChatTemplate, "the model has no tokenizer.chat_template")),
            Some(src) => compile_template(src),
        };

        let mut tokenizer = Tokenizer {
            model,
            controls,
            vocab_size,
            eos,
            add_bos,
            stop,
            special,
            bos_token: bos.map(|id| tokens[id as usize].to_owned()).unwrap_or_default(),
            eos_token: tokens[eos as usize].to_owned(),
            chat,
            default_system: None,
        };
        tokenizer.check_template_limits()?;
        tokenizer.default_system = tokenizer.find_default_system();
        Ok(tokenizer)
    }

    /// Token ids for `text`. Special tokens written in the text are recognised; no BOS is added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match &self.model {
            Model::Bpe { full, .. } => {
                let enc = full.encode_fast(text, false).map_err(|e| tok_err(format!("cannot encode: {e}")))?;
                Ok(enc.get_ids().to_vec())
            }
            Model::Spm(spm) => spm.encode(text, true),
        }
    }

    /// Token ids of a chat rendered with the file's template, where what the messages say is
    /// text only: a control token written in a message (`<|im_end|>`, `<|im_start|>system`)
    /// becomes the characters it is made of, so a message cannot end its turn or open one
    /// for another role. The template is rendered with a marker for each message's content;
    /// the control tokens are looked for in the template's own text only, and the text
    /// between them (template and messages alike) is encoded as the whole rendered text
    /// would be, so a chat without control tokens in its messages gets the same ids. BOS comes
    /// first where the file asks for it (`add_bos_token`), once.
    pub fn encode_chat(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<Vec<u32>> {
        const MARK: char = '\u{E000}';
        let marked: Vec<ChatMessage> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| ChatMessage { role: m.role.clone(), content: format!("{MARK}{i}{MARK}") })
            .collect();
        let rendered = self.apply_chat_template(&marked, add_generation_prompt)?;
        let mut ids = Vec::new();
        let mut text = String::new();
        // The control token the text being gathered follows.
        let mut after = None;
        for (i, piece) in rendered.split(MARK).enumerate() {
            if i % 2 == 1 {
                let Some(m) = piece.parse::<usize>().ok().and_then(|n| messages.get(n)) else {
                    crate::bail!(
                        ChatTemplate,
                        "the chat template changed a message's text in a way padlock cannot follow"
                    );
                };
                text.push_str(&m.content.replace(MARK, "\u{FFFD}"));
                continue;
            }
            let mut rest = piece;
            while let Some((at, control, id)) = self.next_control(rest) {
                text.push_str(&rest[..at]);
                ids.extend(self.encode_text(&std::mem::take(&mut text), after)?);
                ids.push(id);
                after = Some(id);
                rest = &rest[at + control.len()..];
            }
            text.push_str(rest);
        }
        ids.extend(self.encode_text(&text, after)?);
        if let Some(bos) = self.add_bos.filter(|&bos| ids.first() != Some(&bos)) {
            ids.insert(0, bos);
        }
        Ok(ids)
    }

    /// The first control token written in `text` (the longest where several start there):
    /// its byte offset, its text and its id.
    fn next_control<'c>(&'c self, text: &str) -> Option<(usize, &'c str, u32)> {
        self.controls
            .iter()
            .filter_map(|(c, id)| text.find(c.as_str()).map(|at| (at, c.as_str(), *id)))
            .min_by_key(|&(at, c, _)| (at, std::cmp::Reverse(c.len())))
    }

    /// Ids of `text` with no control token recognised in it, where `text` follows the control
    /// token `after` (or starts the chat).
    fn encode_text(&self, text: &str, after: Option<u32>) -> Result<Vec<u32>> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        match &self.model {
            Model::Bpe { text: text_only, .. } => {
                let enc = text_only.encode_fast(text, false).map_err(|e| tok_err(format!("cannot encode: {e}")))?;
                Ok(enc.get_ids().to_vec())
            }
            Model::Spm(spm) => spm.encode_after(text, after),
        }
    }

    /// Text for `ids`, skipping special tokens. For SentencePiece, as llama.cpp's `detokenize`:
    /// the space `add_space_prefix` put before the first token is removed.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.check_ids(ids)?;
        match &self.model {
            Model::Bpe { full, .. } => full.decode(ids, true).map_err(|e| tok_err(format!("cannot decode: {e}"))),
            Model::Spm(spm) => {
                let mut bytes = Vec::new();
                for (i, &id) in ids.iter().enumerate() {
                    spm.piece(id, i == 0, &mut bytes);
                }
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
        }
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    pub fn eos_token_id(&self) -> u32 {
        self.eos
    }

    /// End of text or end of turn.
    pub fn is_stop_token(&self, id: u32) -> bool {
        self.stop.binary_search(&id).is_ok()
    }

    /// Every token that ends a turn (sorted).
    pub fn stop_tokens(&self) -> &[u32] {
        &self.stop
    }

    /// The system message the chat template writes when a chat has none (SmolLM2: "You are a
    /// helpful AI assistant named SmolLM, …"); `None` when it writes none. A context that adds
    /// principles to the system message starts from this one, so that the principles are its
    /// only difference from the plain chat.
    pub fn default_system_message(&self) -> Option<&str> {
        self.default_system.as_deref()
    }

    fn check_ids(&self, ids: &[u32]) -> Result<()> {
        match ids.iter().find(|&&id| id as usize >= self.vocab_size) {
            Some(id) => Err(tok_err(format!("token id {id} is not below the vocabulary size {}", self.vocab_size))),
            None => Ok(()),
        }
    }

    /// The bytes a token contributes to decoded text (none for a special token), exactly as
    /// `decode` computes them; `first`: the token starts the text.
    fn token_bytes(&self, id: u32, first: bool, out: &mut Vec<u8>) -> Result<()> {
        self.check_ids(&[id])?;
        let full = match &self.model {
            Model::Bpe { full, .. } => full,
            Model::Spm(spm) => {
                spm.piece(id, first, out);
                return Ok(());
            }
        };
        if self.special[id as usize] {
            return Ok(());
        }
        // An id without text (a duplicated vocabulary entry) is skipped, as `decode` does.
        let Some(token) = full.id_to_token(id) else {
            return Ok(());
        };
        let start = out.len();
        for c in token.chars() {
            match byte_level_byte(c) {
                Some(b) => out.push(b),
                None => {
                    // Like the ByteLevel decoder: a token that is not byte-level text is used as is.
                    out.truncate(start);
                    out.extend_from_slice(token.as_bytes());
                    break;
                }
            }
        }
        Ok(())
    }
}

fn meta_i64(v: &MetaValue) -> Option<i64> {
    match *v {
        MetaValue::I8(x) => Some(x as i64),
        MetaValue::I16(x) => Some(x as i64),
        MetaValue::I32(x) => Some(x as i64),
        MetaValue::I64(x) => Some(x),
        _ => v.as_u64().and_then(|x| i64::try_from(x).ok()),
    }
}

/// The inverse of GPT-2's `bytes_to_unicode`: printable bytes stand for themselves, the
/// other 68 bytes are mapped in order to U+0100..U+0143.
fn byte_level_byte(c: char) -> Option<u8> {
    let cp = c as u32;
    match cp {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => Some(cp as u8),
        0x100..=0x120 => Some((cp - 0x100) as u8),        // bytes 0x00..=0x20
        0x121..=0x142 => Some((cp - 0x121 + 0x7F) as u8), // bytes 0x7F..=0xA0
        0x143 => Some(0xAD),
        _ => None,
    }
}

/// Turns a stream of token ids into text pieces that are always whole UTF-8 (a multi-byte
/// character may span tokens). Concatenated, the pieces equal [`Tokenizer::decode`] of all ids.
#[derive(Debug, Clone, Default)]
pub struct StreamDecoder {
    /// Bytes of an incomplete character at the end of the stream so far.
    pending: Vec<u8>,
    /// A token has been pushed since the stream began (the first one may lose a space).
    started: bool,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The new complete text since the last push ("" while a character is incomplete).
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> Result<String> {
        tok.token_bytes(id, !self.started, &mut self.pending)?;
        self.started = true;
        Ok(self.take_text(false))
    }

    /// Whatever is left (an incomplete character becomes U+FFFD, as in `decode`); the
    /// decoder is then empty and can start a new stream.
    pub fn finish(&mut self, _tok: &Tokenizer) -> Result<String> {
        self.started = false;
        Ok(self.take_text(true))
    }

    /// Takes the decodable prefix of `pending`; invalid sequences become U+FFFD exactly as
    /// `String::from_utf8_lossy` does, an incomplete tail is kept unless `all`.
    fn take_text(&mut self, all: bool) -> String {
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // `valid` is valid UTF-8 by construction.
                    out.push_str(&String::from_utf8_lossy(valid));
                    match e.error_len() {
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[n..];
                        }
                        None => {
                            if all {
                                out.push(char::REPLACEMENT_CHARACTER);
                                rest = &[];
                            } else {
                                rest = after;
                            }
                            break;
                        }
                    }
                }
            }
        }
        let keep = rest.len();
        let len = self.pending.len();
        self.pending.drain(..len - keep);
        out
    }
}
