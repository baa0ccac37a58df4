#![allow(dead_code)] // each fuzz target uses one of these bodies
//! The bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs`, run with cargo fuzz), shared with
//! `tests/fuzz_corpus.rs`, which replays the kept corpus and every crash found as ordinary
//! tests on the stable toolchain. Each takes any bytes and must return without a panic, a hang
//! or an unbounded allocation, whatever the bytes; errors are the expected outcome.

use std::sync::Arc;

use padlock::align::sampler::SamplingParams;
use padlock::chat::ChatRequest;
use padlock::gguf::GgufFile;
use padlock::model::config::LlamaConfig;
use padlock::tokenizer::{ChatMessage, Tokenizer};

/// A GGUF file: the reader, the model configuration, the tokenizer and the chat template
/// (compiled at load, rendered for a two-message chat).
pub fn gguf_load(data: &[u8]) {
    let Ok(file) = GgufFile::parse(Arc::new(data.to_vec())) else { return };
    let _ = LlamaConfig::from_gguf(&file);
    let Ok(tokenizer) = Tokenizer::from_gguf(&file) else { return };
    let message = |role: &str, content: &str| ChatMessage { role: role.into(), content: content.into() };
    let chat = [message("system", "Be brief."), message("user", "Hi <|im_start|> there")];
    if let Ok(ids) = tokenizer.encode_chat(&chat, true) {
        let _ = tokenizer.decode(&ids);
    }
}

/// A memory export, read without a passphrase and (first byte odd) with one: the JSON, the
/// sealed envelope, the records' checks and the preference screen.
pub fn memory_import(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let passphrase = (first & 1 == 1).then_some("correct horse battery staple");
    let _ = pollster::block_on(padlock::memory::export::import(text, passphrase));
}

/// A chat request as the package's `chat.completions.create` passes it (JSON): its checks, the
/// sampling bounds, the personalization plan and the preference screen.
pub fn chat_request(data: &[u8]) {
    let Ok(request) = serde_json::from_slice::<ChatRequest>(data) else { return };
    let _ = request.options(&SamplingParams::default());
}
