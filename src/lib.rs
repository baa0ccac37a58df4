//! padlock: on-device personalized decoding for small language models.
//!
//! The crate is one model definition (`model::llama`) written against a backend
//! interface (`backend::Backend`), a tokenizer read from the GGUF itself, samplers, and
//! a thin wasm-bindgen layer (`web`) for the browser.

pub mod error;
pub mod model;
pub mod tokenizer;
pub mod backend;
pub mod align;
pub mod generate;
#[cfg(all(feature = "cli", not(target_arch = "wasm32")))]
pub mod eval;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, ErrorCode, Result};
