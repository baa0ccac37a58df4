//! The KV cache on the GPU, paged: every layer has one buffer of pages, a page holds the
//! keys and then the values of `PAGE` consecutive positions of one sequence, and a sequence
//! owns a list of pages (its page table). B sequences of different lengths thus live in one
//! buffer per layer, one dispatch writes or attends over all of them, and a growing sequence
//! takes another page instead of being copied. The layout is `kv_common.wgsl`'s.

use std::cell::RefCell;
use std::rc::Rc;

use super::buffers::GpuBuf;
use super::recorder::Recorder;
use crate::error::Result;

/// Positions per page (`PAGE` in kv_common.wgsl).
pub(crate) const PAGE: usize = 32;

pub(crate) struct KvArena {
    pub layers: Vec<GpuBuf>,
    /// Floats per position: n_kv_heads · head_dim.
    kv_row: usize,
    capacity: usize,
    handed_out: usize,
    free: Vec<u32>,
    max_pages: usize,
}

fn usage() -> wgpu::BufferUsages {
    wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST
}

impl KvArena {
    pub fn new(rec: &Recorder, n_layers: usize, kv_row: usize) -> Result<Self> {
        let limits = rec.device().limits();
        let page_bytes = Self::page_bytes(kv_row);
        let max_bytes = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        let max_pages = (max_bytes / page_bytes) as usize;
        if max_pages == 0 {
            crate::bail!(
                GpuLimits,
                "one KV page ({page_bytes} bytes) exceeds the adapter's largest storage buffer ({max_bytes} bytes)"
            );
        }
        let capacity = 16.min(max_pages);
        let layers = (0..n_layers)
            .map(|_| GpuBuf::new(rec.device(), capacity as u64 * page_bytes, usage(), "padlock kv"))
            .collect();
        Ok(KvArena { layers, kv_row, capacity, handed_out: 0, free: Vec::new(), max_pages })
    }

    fn page_bytes(kv_row: usize) -> u64 {
        (2 * PAGE * kv_row * 4) as u64
    }

    /// `n` pages, growing every layer's buffer (old pages copied over, in recording order)
    /// when the free ones do not suffice.
    fn alloc(&mut self, rec: &Recorder, n: usize) -> Result<Vec<u32>> {
        let fresh = n.saturating_sub(self.free.len());
        if self.handed_out + fresh > self.capacity {
            let needed = self.handed_out + fresh;
            if needed > self.max_pages {
                crate::bail!(
                    GpuLimits,
                    "the KV cache needs {needed} pages of {PAGE} positions; the adapter's largest storage buffer holds {}",
                    self.max_pages
                );
            }
            let capacity = (2 * self.capacity).max(needed).min(self.max_pages);
            let page_bytes = Self::page_bytes(self.kv_row);
            for layer in self.layers.iter_mut() {
                let bigger = GpuBuf::new(rec.device(), capacity as u64 * page_bytes, usage(), "padlock kv");
                rec.copy(layer, 0, &bigger, 0, self.handed_out as u64 * page_bytes);
                *layer = bigger;
            }
            self.capacity = capacity;
        }
        let mut pages = Vec::with_capacity(n);
        while pages.len() < n {
            match self.free.pop() {
                Some(p) => pages.push(p),
                None => {
                    pages.push(self.handed_out as u32);
                    self.handed_out += 1;
                }
            }
        }
        Ok(pages)
    }

    fn release(&mut self, pages: impl IntoIterator<Item = u32>) {
        self.free.extend(pages);
    }
}

/// One sequence's keys and values: its pages in the shared arena and how many positions it holds.
pub struct GpuKvCache {
    pub(crate) pages: Vec<u32>,
    pub(crate) len: usize,
    arena: Rc<RefCell<KvArena>>,
}

impl GpuKvCache {
    pub(crate) fn new(arena: Rc<RefCell<KvArena>>) -> Self {
        GpuKvCache { pages: Vec::new(), len: 0, arena }
    }

    pub(crate) fn arena(&self) -> &Rc<RefCell<KvArena>> {
        &self.arena
    }

    /// Makes room for positions `..len`.
    pub(crate) fn reserve(&mut self, rec: &Recorder, len: usize) -> Result<()> {
        let need = len.div_ceil(PAGE);
        if need > self.pages.len() {
            let more = self.arena.borrow_mut().alloc(rec, need - self.pages.len())?;
            self.pages.extend(more);
        }
        Ok(())
    }

    /// Forgets positions `len..`, giving back pages no longer needed.
    pub(crate) fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
            let keep = len.div_ceil(PAGE);
            if keep < self.pages.len() {
                let dropped: Vec<u32> = self.pages.drain(keep..).collect();
                self.arena.borrow_mut().release(dropped);
            }
        }
    }
}

impl Drop for GpuKvCache {
    fn drop(&mut self) {
        if let Ok(mut arena) = self.arena.try_borrow_mut() {
            arena.release(self.pages.drain(..));
        }
    }
}
