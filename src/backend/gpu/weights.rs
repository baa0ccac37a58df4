//! Weights on the GPU: the GGUF bytes, uploaded once into a few large buffers and never
//! dequantized. Formats whose blocks are a whole number of 4-byte words are kept byte for
//! byte; the others get two bytes of padding per block (see [`padding`]) so that every
//! block starts on a word (WGSL reads words), which is the layout `weights.wgsl` decodes.
//!
//! Consecutive weights share a buffer (a chunk), so Q/K/V or gate/up can be multiplied in
//! one dispatch that binds the chunk once; a weight too large for a chunk gets its own
//! buffer. Nothing larger than the adapter's largest storage binding can be used at all:
//! that is a clear `GPU_LIMITS` error, not a crash.

use std::borrow::Cow;

use super::buffers::GpuBuf;
use crate::error::Result;
use crate::gguf::GgmlDType;

const CHUNK_BYTES: u64 = 16 << 20;

/// A weight as the GPU holds it.
#[derive(Clone, Debug)]
pub struct GpuWeight {
    pub dtype: GgmlDType,
    /// Elements per row.
    pub cols: usize,
    pub rows: usize,
    pub(crate) buf: GpuBuf,
    /// Where the weight starts in `buf`, in 4-byte words.
    pub(crate) word: u32,
}

/// For the formats whose blocks are not a whole number of words: (block bytes, where in the
/// block two zero bytes go). After a leading f16 scale where one leads (so that the quants
/// start on a word), at the end otherwise.
fn padding(dtype: GgmlDType) -> Option<(usize, usize)> {
    match dtype {
        GgmlDType::Q4_0 | GgmlDType::Q5_0 | GgmlDType::Q8_0 | GgmlDType::IQ4_NL => Some((dtype.block_bytes(), 2)),
        GgmlDType::Q3_K | GgmlDType::Q6_K => Some((dtype.block_bytes(), dtype.block_bytes())),
        _ => None,
    }
}

/// The GPU layout of a GGUF tensor's bytes (see the module comment).
pub(crate) fn repack(dtype: GgmlDType, bytes: &[u8]) -> Cow<'_, [u8]> {
    match padding(dtype) {
        Some((block, at)) => {
            let mut out = Vec::with_capacity(bytes.len() / block * (block + 2));
            for b in bytes.chunks_exact(block) {
                out.extend_from_slice(&b[..at]);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&b[at..]);
            }
            Cow::Owned(out)
        }
        None if !bytes.len().is_multiple_of(4) => {
            let mut v = bytes.to_vec();
            v.resize(bytes.len().div_ceil(4) * 4, 0);
            Cow::Owned(v)
        }
        None => Cow::Borrowed(bytes),
    }
}

/// Bytes `repack` makes of `n_bytes` of a `dtype` tensor, as the store places them (16-aligned).
pub(crate) fn packed_len(dtype: GgmlDType, n_bytes: usize) -> u64 {
    let n = match padding(dtype) {
        Some((block, _)) => n_bytes / block * (block + 2),
        None => n_bytes.div_ceil(4) * 4,
    };
    (n as u64).div_ceil(16) * 16
}

pub(crate) struct WeightStore {
    chunk: Option<(GpuBuf, u64)>,
    max_binding: u64,
}

impl WeightStore {
    pub fn new(limits: &wgpu::Limits) -> Self {
        WeightStore { chunk: None, max_binding: limits.max_storage_buffer_binding_size.min(limits.max_buffer_size) }
    }

    /// Makes sure the next `bytes` (in a few weights) land in one chunk, when they fit one.
    pub fn keep_together(&mut self, device: &wgpu::Device, bytes: u64) {
        let chunk_bytes = CHUNK_BYTES.min(self.max_binding);
        let room = self.chunk.as_ref().map_or(0, |(buf, used)| buf.size() - used);
        if bytes > room && bytes <= chunk_bytes / 2 {
            let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
            self.chunk = Some((GpuBuf::new(device, chunk_bytes, usage, "padlock weights"), 0));
        }
    }

    /// Uploads a weight's bytes (already in GPU layout); returns its buffer and word offset.
    pub fn upload(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        name: &str,
        bytes: &[u8],
    ) -> Result<(GpuBuf, u32)> {
        let len = bytes.len() as u64;
        if len > self.max_binding {
            crate::bail!(
                GpuLimits,
                "tensor {name} takes {len} bytes on the GPU; this adapter binds at most {} bytes per buffer",
                self.max_binding
            );
        }
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        let chunk_bytes = CHUNK_BYTES.min(self.max_binding);
        // Half a chunk or more: its own buffer (a chunk never holds much padding).
        if len > chunk_bytes / 2 {
            let buf = GpuBuf::new(device, len.max(4), usage, name);
            queue.write_buffer(&buf.buffer, 0, bytes);
            return Ok((buf, 0));
        }
        let fits = matches!(&self.chunk, Some((buf, used)) if used + len <= buf.size());
        if !fits {
            self.chunk = Some((GpuBuf::new(device, chunk_bytes, usage, "padlock weights"), 0));
        }
        let (buf, used) = self.chunk.as_mut().expect("a chunk was just made");
        let offset = *used;
        queue.write_buffer(&buf.buffer, offset, bytes);
        *used = (offset + len).div_ceil(16) * 16;
        Ok((buf.clone(), (offset / 4) as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_padded_to_words_and_keep_their_bytes() {
        let q8: Vec<u8> = (0..68).map(|i| i as u8).collect();
        let r = repack(GgmlDType::Q8_0, &q8);
        assert_eq!(r.len(), 72);
        assert_eq!(&r[..4], &[0, 1, 0, 0]);
        assert_eq!(&r[4..36], &q8[2..34]);
        assert_eq!(&r[36..40], &[34, 35, 0, 0]);
        let q4: Vec<u8> = (0..18).map(|i| i as u8).collect();
        assert_eq!(&*repack(GgmlDType::Q4_0, &q4), &[&[0u8, 1, 0, 0][..], &q4[2..]].concat()[..]);
        let q41: Vec<u8> = (0..40).collect();
        assert!(matches!(repack(GgmlDType::Q4_1, &q41), Cow::Borrowed(_)));
        assert_eq!(repack(GgmlDType::F16, &[1, 2, 3, 4, 5, 6]).len(), 8);
        let q6k: Vec<u8> = (0..420).map(|i| i as u8).collect();
        let r = repack(GgmlDType::Q6_K, &q6k);
        assert_eq!((r.len(), &r[208..214], &r[422..424]), (424, &[208u8, 209, 0, 0, 210, 211][..], &[0u8, 0][..]));
        for (dt, bytes) in [
            (GgmlDType::Q8_0, &q8[..]),
            (GgmlDType::Q4_0, &q4[..]),
            (GgmlDType::F16, &[1u8, 2, 3, 4, 5, 6][..]),
            (GgmlDType::Q6_K, &q6k[..]),
        ] {
            assert_eq!(packed_len(dt, bytes.len()), (repack(dt, bytes).len() as u64).div_ceil(16) * 16);
        }
        // Every format's GPU block is a whole number of words.
        for dt in GgmlDType::ALL {
            let block = padding(dt).map_or(dt.block_bytes(), |(b, _)| b + 2);
            assert!(block.is_multiple_of(4) || dt.block_size() == 1, "{}", dt.name());
        }
    }
}
