#![no_main]

#[path = "../../tests/common/fuzz_bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::memory_import(data));
