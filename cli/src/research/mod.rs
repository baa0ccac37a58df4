//! The research commands (value heads and the evaluation in EVAL.md) and their code, kept
//! out of the library so the wasm build does not carry training.

pub mod dpo;
pub mod eval;
pub mod evaluate;
pub mod make_pairs;
pub mod train_head;
