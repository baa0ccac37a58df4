//! The CPU backend's KV caches, and what they may still grow by: in wasm the whole memory is
//! 4 GiB, so a request whose keys and values cannot fit is refused before it allocates any.

use std::sync::atomic::{AtomicU64, Ordering};

use super::AttentionShape;
use crate::error::{Error, ErrorCode, Result};

/// Keys and values of one sequence, position-major per layer: `[pos][kv_head][head_dim]`,
/// so appending a step is an `extend` and the cache grows only as far as it is used.
pub struct CpuKvCache {
    pub(super) keys: Vec<Vec<f32>>,
    pub(super) values: Vec<Vec<f32>>,
    pub(super) row: usize,
}

/// Bytes of capacity the live caches hold, and the most they ever held together: wasm
/// memory never shrinks, so what caches held and freed is space the allocator can give again.
static HELD: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);

impl CpuKvCache {
    pub(super) fn new(shape: &AttentionShape) -> Self {
        CpuKvCache { keys: vec![Vec::new(); shape.layers], values: vec![Vec::new(); shape.layers], row: shape.kv_row() }
    }

    pub(super) fn len(&self, layer: usize) -> usize {
        self.keys[layer].len() / self.row
    }

    /// Appends `keys` and `values` (whole rows) to `layer`; running out of memory is an error
    /// the caller can act on, not an abort.
    pub(super) fn append(&mut self, layer: usize, keys: &[f32], values: &[f32]) -> Result<()> {
        let held = self.len(layer);
        for (store, new) in [(&mut self.keys[layer], keys), (&mut self.values[layer], values)] {
            let before = store.capacity();
            store.try_reserve(new.len()).map_err(|_| kv_memory_error(new.len(), held))?;
            let grown = ((store.capacity() - before) * 4) as u64;
            let now = HELD.fetch_add(grown, Ordering::Relaxed) + grown;
            PEAK.fetch_max(now, Ordering::Relaxed);
            store.extend_from_slice(new);
        }
        Ok(())
    }
}

impl Drop for CpuKvCache {
    fn drop(&mut self) {
        let bytes: usize = self.keys.iter().chain(&self.values).map(|v| v.capacity() * 4).sum();
        HELD.fetch_sub(bytes as u64, Ordering::Relaxed);
    }
}

/// How many more positions (keys and values in every layer) the caches can grow by, where
/// that is bounded: in wasm, the memory's 4 GiB less what it holds now and some headroom for
/// the step's activations, plus the space caches freed; natively, no bound is known.
pub(super) fn positions_available(shape: &AttentionShape) -> Option<u64> {
    let per_position = shape.kv_bytes_per_position().max(1);
    wasm_bytes_available().map(|bytes| bytes / per_position)
}

#[cfg(target_arch = "wasm32")]
fn wasm_bytes_available() -> Option<u64> {
    const MEMORY_LIMIT: u64 = 4 << 30;
    const HEADROOM: u64 = 256 << 20;
    let size = core::arch::wasm32::memory_size(0) as u64 * 65536;
    let freed = PEAK.load(Ordering::Relaxed).saturating_sub(HELD.load(Ordering::Relaxed));
    Some(MEMORY_LIMIT.saturating_sub(HEADROOM).saturating_sub(size) + freed)
}

#[cfg(not(target_arch = "wasm32"))]
fn wasm_bytes_available() -> Option<u64> {
    None
}

fn kv_memory_error(values: usize, held: usize) -> Error {
    Error::new(
        ErrorCode::MemoryLimit,
        format!(
            "no memory left to cache {} more KB of keys and values beside the {held} positions held: \
             ask for fewer tokens or fewer preferences, or start a new chat",
            values * 4 / 1024
        ),
    )
}
