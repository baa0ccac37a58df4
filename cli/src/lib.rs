//! The `padlock` command line's code, as a library so that its tests can reach the research
//! code (`research::eval`) the commands use.

pub mod commands;
pub mod engine;
pub mod options;
pub mod research;
