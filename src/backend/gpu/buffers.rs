//! GPU buffers: every buffer carries an id (so bind groups can be cached by what they
//! bind), activations come from a pool and go back to it when their tensor is dropped, and
//! the small per-dispatch data (kernel parameters, token ids, positions, page tables)
//! is packed into one arena that is written with a single `write_buffer` per submission.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A wgpu buffer and an id unique for the process's lifetime.
#[derive(Clone, Debug)]
pub(crate) struct GpuBuf {
    pub id: u64,
    pub buffer: wgpu::Buffer,
}

impl GpuBuf {
    pub fn new(device: &wgpu::Device, size: u64, usage: wgpu::BufferUsages, label: &str) -> Self {
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        });
        GpuBuf { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), buffer }
    }

    pub fn size(&self) -> u64 {
        self.buffer.size()
    }
}

/// Buffers by power-of-two size class, handed out and taken back. A decode step asks for
/// the same sizes in the same order every time, so after the first step it allocates nothing
/// (and gets the same buffers, which keeps the bind group cache warm).
pub(crate) struct Pool {
    usage: wgpu::BufferUsages,
    label: &'static str,
    free: HashMap<u64, Vec<GpuBuf>>,
}

impl Pool {
    pub fn new(usage: wgpu::BufferUsages, label: &'static str) -> Self {
        Pool { usage, label, free: HashMap::new() }
    }

    pub fn class(bytes: u64) -> u64 {
        bytes.max(256).next_power_of_two()
    }

    pub fn take(&mut self, device: &wgpu::Device, bytes: u64) -> GpuBuf {
        let class = Self::class(bytes);
        match self.free.get_mut(&class).and_then(Vec::pop) {
            Some(b) => b,
            None => GpuBuf::new(device, class, self.usage, self.label),
        }
    }

    pub fn give(&mut self, buf: GpuBuf) {
        self.free.entry(buf.size()).or_default().push(buf);
    }
}

/// A buffer on loan from a pool; it goes back when the last tensor using it is dropped.
/// Reuse is safe without waiting for the GPU: commands run in the order they were recorded,
/// so a later writer always comes after the earlier readers.
pub(crate) struct Pooled {
    pub buf: GpuBuf,
    pool: Weak<RefCell<Pool>>,
}

impl Pooled {
    pub fn new(buf: GpuBuf, pool: &Rc<RefCell<Pool>>) -> Self {
        Pooled { buf, pool: Rc::downgrade(pool) }
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            if let Ok(mut pool) = pool.try_borrow_mut() {
                pool.give(self.buf.clone());
            }
        }
    }
}

/// The per-submission upload area: kernel parameters and small inputs, each at an offset
/// aligned for binding, copied to the GPU in one `write_buffer` just before the submission.
pub(crate) struct Arena {
    pub buf: GpuBuf,
    host: Vec<u8>,
    align: u64,
    /// Shared uploads already in this submission's arena, by the address of their `Rc`
    /// (which the arena keeps alive, so the address cannot be reused meanwhile).
    shared: HashMap<usize, (Rc<[u8]>, u64)>,
}

impl Arena {
    pub fn new(device: &wgpu::Device, capacity: u64, align: u64) -> Self {
        let usage = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        Arena {
            buf: GpuBuf::new(device, capacity, usage, "padlock arena"),
            host: Vec::new(),
            align,
            shared: HashMap::new(),
        }
    }

    pub fn capacity(&self) -> u64 {
        self.buf.size()
    }

    /// Bytes an upload of `len` takes, padding included (never 0: a binding is never empty).
    pub fn footprint(&self, len: usize) -> u64 {
        (len.max(16) as u64).div_ceil(self.align) * self.align
    }

    pub fn room(&self) -> u64 {
        self.capacity() - self.host.len() as u64
    }

    /// Copies `data` in and returns (offset, binding size). The caller has checked the room.
    pub fn push(&mut self, data: &[u8]) -> (u64, u64) {
        let offset = self.host.len() as u64;
        let size = (data.len().max(16) as u64).div_ceil(4) * 4;
        self.host.extend_from_slice(data);
        self.host.resize((offset + self.footprint(data.len())) as usize, 0);
        (offset, size)
    }

    pub fn push_shared(&mut self, data: &Rc<[u8]>) -> (u64, u64) {
        let key = Rc::as_ptr(data) as *const u8 as usize;
        if let Some((_, offset)) = self.shared.get(&key) {
            return (*offset, (data.len().max(16) as u64).div_ceil(4) * 4);
        }
        let (offset, size) = self.push(data);
        self.shared.insert(key, (data.clone(), offset));
        (offset, size)
    }

    /// Writes what was pushed to the GPU (ordered before the submission that follows) and
    /// starts over.
    pub fn flush(&mut self, queue: &wgpu::Queue) {
        if !self.host.is_empty() {
            queue.write_buffer(&self.buf.buffer, 0, &self.host);
        }
        self.host.clear();
        self.shared.clear();
    }
}
