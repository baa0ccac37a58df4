//! The Llama model: its hyper-parameters (read from a GGUF file) and its forward pass.

pub mod config;
pub mod llama;

/// The GGUF format's old path, kept only while `src/bin` still imports it from here.
#[doc(hidden)]
pub use crate::gguf;
