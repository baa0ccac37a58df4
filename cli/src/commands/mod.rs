//! The product's commands: answer, measure, and the preference memory with its feedback.

pub mod bench;
pub mod bench_chat;
pub mod feedback;
pub mod generate;
pub mod memory;
