//! Model files and the Llama forward pass.

pub mod config;
pub mod gguf;
pub mod llama;
