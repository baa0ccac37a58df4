//! padlock: on-device personalized decoding for small language models.
//!
//! The crate is one model definition (`model::llama`) written against a backend
//! interface (`backend::Backend`), a tokenizer read from the GGUF itself, samplers, and
//! a thin wasm-bindgen layer (`web`) for the browser.

pub mod align;
pub mod backend;
pub mod error;
pub mod feedback;
pub mod generate;
pub mod memory;
pub mod model;
pub mod tokenizer;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, ErrorCode, Result};
