//! Recording work and submitting it once. Every backend operation appends a dispatch (or
//! a copy) to a list; nothing reaches the GPU until a readback needs a result, which encodes
//! the whole list into one command buffer, writes the arena, submits once and maps the
//! result asynchronously. A decode step is therefore one submission.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::buffers::{Arena, GpuBuf, Pool};
use super::params::KernelParams;
use super::shaders::{Pipeline, PipelineCache, Variant};
use crate::error::{Error, ErrorCode, Result};

/// One resource a dispatch binds, in binding order after the parameters (binding 0).
pub(crate) enum Bind<'a> {
    /// A range of a buffer.
    Buffer { buf: &'a GpuBuf, offset: u64, size: u64 },
    /// Bytes uploaded for this dispatch alone (ids, a row list).
    Data(&'a [u8]),
    /// Bytes uploaded once per submission however many dispatches pass the same `Rc`
    /// (the step's positions and page tables, its RoPE angles).
    Shared(&'a Rc<[u8]>),
}

enum Command {
    Dispatch { pipeline: Rc<Pipeline>, group: wgpu::BindGroup, grid: [u32; 3] },
    Copy { src: wgpu::Buffer, src_offset: u64, dst: wgpu::Buffer, dst_offset: u64, size: u64 },
}

/// Counters for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GpuStats {
    /// Compute dispatches recorded.
    pub dispatches: u64,
    /// Command submissions (one per readback, plus one whenever the arena filled up).
    pub submissions: u64,
    /// Bind groups created (the rest came from the cache).
    pub bind_groups_created: u64,
    /// Pipelines compiled.
    pub pipelines: u64,
}

type BindKey = (u64, Vec<(u64, u64, u64)>);

/// Bind groups kept at most; past this the cache starts over (prompts of new lengths keep
/// adding keys that a decode loop never uses again).
const MAX_BIND_GROUPS: usize = 4096;

pub(crate) struct Recorder {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipelines: RefCell<PipelineCache>,
    commands: RefCell<Vec<Command>>,
    arena: RefCell<Arena>,
    bind_groups: RefCell<HashMap<BindKey, wgpu::BindGroup>>,
    staging: RefCell<Pool>,
    max_workgroups: u32,
    stats: Cell<GpuStats>,
    /// Errors wgpu reported outside any call (validation, out of memory), surfaced at the next readback.
    errors: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    pub fn new(device: wgpu::Device, queue: wgpu::Queue, errors: Arc<Mutex<Vec<String>>>) -> Self {
        let limits = device.limits();
        let align = limits.min_uniform_buffer_offset_alignment.max(limits.min_storage_buffer_offset_alignment) as u64;
        let arena = Arena::new(&device, 1 << 20, align);
        Recorder {
            max_workgroups: limits.max_compute_workgroups_per_dimension,
            staging: RefCell::new(Pool::new(
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                "padlock readback",
            )),
            device,
            queue,
            pipelines: RefCell::new(PipelineCache::default()),
            commands: RefCell::new(Vec::new()),
            arena: RefCell::new(arena),
            bind_groups: RefCell::new(HashMap::new()),
            stats: Cell::new(GpuStats::default()),
            errors,
        }
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    pub fn stats(&self) -> GpuStats {
        self.stats.get()
    }

    fn count(&self, f: impl FnOnce(&mut GpuStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// Workgroup counts for `n` groups laid out in x (and y when x would exceed the limit);
    /// kernels recover the index as `wid.x + wid.y * num_workgroups.x`.
    pub fn grid(&self, n: u64) -> Result<[u32; 3]> {
        let max = self.max_workgroups as u64;
        let n = n.max(1);
        if n <= max {
            return Ok([n as u32, 1, 1]);
        }
        let y = n.div_ceil(max);
        if y > max {
            crate::bail!(GpuLimits, "{n} workgroups exceed the adapter's limit of {max}×{max}");
        }
        Ok([max as u32, y as u32, 1])
    }

    /// Records one dispatch of `variant` with `params` at binding 0 and `binds` after it.
    pub fn dispatch<P: KernelParams>(
        &self,
        variant: &Variant,
        params: &P,
        binds: &[Bind],
        grid: [u32; 3],
    ) -> Result<()> {
        let pipeline = self.pipelines.borrow_mut().get(&self.device, variant)?;
        self.count(|s| s.pipelines = self.pipelines.borrow().len() as u64);
        if pipeline.bindings.len() != binds.len() + 1 {
            crate::bail!(
                Backend,
                "{} binds {} resources, given {}",
                variant.file,
                pipeline.bindings.len(),
                binds.len() + 1
            );
        }
        let ranges = self.upload(variant, bytemuck::bytes_of(params), binds)?;
        let group = self.bind_group(variant, &pipeline, &ranges);
        self.commands.borrow_mut().push(Command::Dispatch { pipeline, group, grid });
        self.count(|s| s.dispatches += 1);
        Ok(())
    }

    /// The buffer ranges of a dispatch's bindings, after uploading its parameters and data
    /// into the arena (submitting what is recorded first if the arena is too full).
    fn upload(&self, variant: &Variant, params: &[u8], binds: &[Bind]) -> Result<Vec<(GpuBuf, u64, u64)>> {
        let mut arena = self.arena.borrow_mut();
        let need: u64 = arena.footprint(params.len())
            + binds
                .iter()
                .map(|b| match b {
                    // Counted even when already uploaded: a flush below would drop it.
                    Bind::Data(d) => arena.footprint(d.len()),
                    Bind::Shared(d) => arena.footprint(d.len()),
                    Bind::Buffer { .. } => 0,
                })
                .sum::<u64>();
        if need > arena.room() {
            drop(arena);
            self.submit();
            arena = self.arena.borrow_mut();
            if need > arena.capacity() {
                *arena = Arena::new(&self.device, need.next_power_of_two(), arena.footprint(1));
                self.bind_groups.borrow_mut().clear();
            }
        }
        let mut ranges: Vec<(GpuBuf, u64, u64)> = Vec::with_capacity(binds.len() + 1);
        let (offset, size) = arena.push(params);
        ranges.push((arena.buf.clone(), offset, size));
        for b in binds {
            let (buf, offset, size) = match b {
                Bind::Buffer { buf, offset, size } => ((*buf).clone(), *offset, *size),
                Bind::Data(d) => {
                    let (o, s) = arena.push(d);
                    (arena.buf.clone(), o, s)
                }
                Bind::Shared(d) => {
                    let (o, s) = arena.push_shared(d);
                    (arena.buf.clone(), o, s)
                }
            };
            if size == 0 {
                crate::bail!(Backend, "{}: an empty binding", variant.file);
            }
            ranges.push((buf, offset, size));
        }
        Ok(ranges)
    }

    /// The bind group of `pipeline` over `ranges`, from the cache or made now.
    fn bind_group(&self, variant: &Variant, pipeline: &Pipeline, ranges: &[(GpuBuf, u64, u64)]) -> wgpu::BindGroup {
        let key: BindKey = (pipeline.id, ranges.iter().map(|(b, o, s)| (b.id, *o, *s)).collect());
        let mut cache = self.bind_groups.borrow_mut();
        if let Some(g) = cache.get(&key) {
            return g.clone();
        }
        if cache.len() >= MAX_BIND_GROUPS {
            cache.clear();
        }
        let entries: Vec<wgpu::BindGroupEntry> = ranges
            .iter()
            .enumerate()
            .map(|(i, (buf, offset, size))| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &buf.buffer,
                    offset: *offset,
                    size: wgpu::BufferSize::new(*size),
                }),
            })
            .collect();
        let g = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(variant.file),
            layout: &pipeline.layout,
            entries: &entries,
        });
        self.count(|s| s.bind_groups_created += 1);
        cache.insert(key, g.clone());
        g
    }

    /// Records a buffer-to-buffer copy (offsets and size multiples of 4).
    pub fn copy(&self, src: &GpuBuf, src_offset: u64, dst: &GpuBuf, dst_offset: u64, size: u64) {
        if size > 0 {
            self.commands.borrow_mut().push(Command::Copy {
                src: src.buffer.clone(),
                src_offset,
                dst: dst.buffer.clone(),
                dst_offset,
                size,
            });
        }
    }

    /// Encodes everything recorded so far into one command buffer and submits it.
    pub fn submit(&self) {
        let commands = std::mem::take(&mut *self.commands.borrow_mut());
        self.arena.borrow_mut().flush(&self.queue);
        if commands.is_empty() {
            return;
        }
        let mut encoder =
            self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("padlock step") });
        let mut rest = &commands[..];
        while !rest.is_empty() {
            let run = rest.iter().take_while(|c| matches!(c, Command::Dispatch { .. })).count();
            if run > 0 {
                let mut pass =
                    encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                for c in &rest[..run] {
                    if let Command::Dispatch { pipeline, group, grid } = c {
                        pass.set_pipeline(&pipeline.pipeline);
                        pass.set_bind_group(0, group, &[]);
                        pass.dispatch_workgroups(grid[0], grid[1], grid[2]);
                    }
                }
                rest = &rest[run..];
            } else {
                if let Command::Copy { src, src_offset, dst, dst_offset, size } = &rest[0] {
                    encoder.copy_buffer_to_buffer(src, *src_offset, dst, *dst_offset, *size);
                }
                rest = &rest[1..];
            }
        }
        self.queue.submit([encoder.finish()]);
        self.count(|s| s.submissions += 1);
    }

    /// Submits everything recorded, with copies of `parts` (buffer, offset, bytes; multiples
    /// of 4) into one staging buffer, and returns their bytes back to back once the GPU is
    /// done. Never blocks a browser: the map is awaited; natively the device is polled.
    pub async fn read_back(&self, parts: &[(&GpuBuf, u64, u64)]) -> Result<Vec<u8>> {
        let total: u64 = parts.iter().map(|p| p.2).sum();
        if total == 0 {
            return Ok(Vec::new());
        }
        let staging = self.staging.borrow_mut().take(&self.device, total);
        let mut at = 0;
        for (buf, offset, size) in parts {
            self.copy(buf, *offset, &staging, at, *size);
            at += size;
        }
        self.submit();
        let mapped = MapFuture::new(&staging.buffer, total);
        #[cfg(not(target_arch = "wasm32"))]
        {
            // Natively nothing drives the callbacks but polling; waiting here is fine.
            self.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| Error::new(ErrorCode::Backend, format!("waiting for the GPU: {e}")))?;
        }
        let result = mapped.await;
        self.check_errors()?;
        result.map_err(|_| Error::new(ErrorCode::Backend, "mapping a readback buffer failed"))?;
        let bytes = {
            let view = staging
                .buffer
                .get_mapped_range(0..total)
                .map_err(|e| Error::new(ErrorCode::Backend, format!("reading a mapped buffer: {e}")))?;
            view.to_vec()
        };
        staging.buffer.unmap();
        self.staging.borrow_mut().give(staging);
        Ok(bytes)
    }

    /// The first error wgpu reported since the last check, as a typed error.
    pub fn check_errors(&self) -> Result<()> {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        if errors.is_empty() {
            return Ok(());
        }
        let first = errors.remove(0);
        errors.clear();
        let code =
            if first.to_lowercase().contains("out of memory") { ErrorCode::GpuLimits } else { ErrorCode::Backend };
        Err(Error::new(code, format!("the GPU reported: {first}")))
    }
}

/// The callback's result, once it has fired, and who to wake then.
type MapState = (Option<std::result::Result<(), wgpu::BufferAsyncError>>, Option<Waker>);

/// Resolves when a `map_async` callback fires (a one-shot channel without a dependency).
struct MapFuture {
    state: Arc<Mutex<MapState>>,
}

impl MapFuture {
    fn new(buffer: &wgpu::Buffer, size: u64) -> Self {
        let state = Arc::new(Mutex::new((None, None::<Waker>)));
        let shared = state.clone();
        buffer.map_async(wgpu::MapMode::Read, 0..size, move |r| {
            let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
            s.0 = Some(r);
            if let Some(w) = s.1.take() {
                w.wake();
            }
        });
        MapFuture { state }
    }
}

impl Future for MapFuture {
    type Output = std::result::Result<(), wgpu::BufferAsyncError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.0.take() {
            Some(r) => Poll::Ready(r),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
