//! The Llama model: its hyper-parameters (read from a GGUF file) and its forward pass.

pub mod config;
pub mod inspect;
pub mod llama;
