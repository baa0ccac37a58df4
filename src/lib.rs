//! padlock: on-device personalized decoding for small language models.
//!
//! The crate is one model definition (`model::llama`) written against a backend
//! interface (`backend::Backend`), a tokenizer read from the GGUF itself, samplers, and
//! a thin wasm-bindgen layer (`web`) for the browser.
//!
//! Imports only point down, from the bottom: `error`; the file format (`gguf`) and candidate
//! selection (`logits`); the compute interface (`backend`); the model (`model`) and the
//! tokenizer; decoding-time alignment (`align`); generation (`generate`); the preference
//! memory (`memory`); the browser API (`web`). `scripts/module-deps.sh` checks it.

pub mod align;
pub mod backend;
pub mod chat;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod logits;
pub mod memory;
pub mod model;
pub mod tokenizer;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, ErrorCode, Result};
