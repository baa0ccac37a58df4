//! Model files and the Llama forward pass.

pub mod gguf;
pub mod config;
pub mod llama;
