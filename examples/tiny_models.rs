//! Writes the tiny random-weight models of every architecture (`tests/common/tiny_models.rs`)
//! to a folder, for `scripts/tiny_models.py` to record llama.cpp's logits on them:
//!
//!     cargo run --example tiny_models -- target/tiny-models

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
#[path = "../tests/common/gguf_writer.rs"]
mod gguf_writer;
#[cfg(not(target_arch = "wasm32"))]
#[path = "../tests/common/kernels.rs"]
mod kernels;
#[cfg(not(target_arch = "wasm32"))]
#[path = "../tests/common/tiny_models.rs"]
mod tiny_models;

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target/tiny-models".into()));
    std::fs::create_dir_all(&dir).expect("create the folder");
    for model in &tiny_models::TINY_MODELS {
        let path = dir.join(format!("{}.gguf", model.name));
        std::fs::write(&path, model.gguf()).expect("write the model");
        println!("{}", path.display());
    }
}
