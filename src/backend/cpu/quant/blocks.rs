//! The GGUF weight formats as `#[repr(C)]` structs (ggml's `block_q4_0`, `block_q4_1`,
//! `block_q8_0`), viewed in place over a tensor's bytes with bytemuck.
//!
//! GGUF aligns a tensor's data to 32 bytes, but the blocks are 18, 20 and 34 bytes long, so
//! every field is made of bytes (scales as little-endian [`F16Le`]): the structs have
//! alignment 1 and a block can be viewed at any offset.

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::GROUP;

/// A little-endian f16, as GGUF stores scales and F16 weights.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct F16Le(pub [u8; 2]);

impl F16Le {
    #[inline]
    pub fn get(self) -> f32 {
        f16::from_le_bytes(self.0).to_f32()
    }
}

/// A little-endian f32, as GGUF stores F32 weights.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct F32Le(pub [u8; 4]);

impl F32Le {
    #[inline]
    pub fn get(self) -> f32 {
        f32::from_le_bytes(self.0)
    }
}

/// Q4_0: 32 weights `d·(q − 8)`, q unsigned 4-bit; byte j of `qs` holds element j in its low
/// nibble and element j + 16 in its high nibble.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct BlockQ4_0 {
    pub d: F16Le,
    pub qs: [u8; 16],
}

/// Q4_1: 32 weights `d·q + m`, q unsigned 4-bit, packed as in Q4_0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct BlockQ4_1 {
    pub d: F16Le,
    pub m: F16Le,
    pub qs: [u8; 16],
}

/// Q8_0: 32 weights `d·q`, q signed 8-bit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct BlockQ8_0 {
    pub d: F16Le,
    pub qs: [i8; 32],
}

/// 32 consecutive F32 weights: the group the SIMD kernels take an F32 row in.
pub(crate) type GroupF32 = [F32Le; GROUP];
/// 32 consecutive F16 weights.
pub(crate) type GroupF16 = [F16Le; GROUP];

// ggml's sizes, and alignment 1 (any offset in the file is a valid block).
const _: () = {
    assert!(size_of::<BlockQ4_0>() == 18 && align_of::<BlockQ4_0>() == 1);
    assert!(size_of::<BlockQ4_1>() == 20 && align_of::<BlockQ4_1>() == 1);
    assert!(size_of::<BlockQ8_0>() == 34 && align_of::<BlockQ8_0>() == 1);
    assert!(size_of::<GroupF32>() == 128 && align_of::<GroupF32>() == 1);
    assert!(size_of::<GroupF16>() == 64 && align_of::<GroupF16>() == 1);
};

/// The whole blocks at the start of `bytes`, in place (a partial block at the end is left
/// out, as `chunks_exact` leaves it).
#[inline]
pub(crate) fn blocks<B: Pod>(bytes: &[u8]) -> &[B] {
    let whole = bytes.len() / size_of::<B>() * size_of::<B>();
    bytemuck::cast_slice(&bytes[..whole])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_view_the_bytes_at_any_offset() {
        let bytes: Vec<u8> = (0..60u8).collect();
        // Offset 1: no block is aligned to anything but a byte.
        let q41: &[BlockQ4_1] = blocks(&bytes[1..]);
        assert_eq!(q41.len(), 2);
        assert_eq!((q41[1].d.0, q41[1].m.0), ([21, 22], [23, 24]));
        assert_eq!(q41[1].qs[15], 40);
        let q80: &[BlockQ8_0] = blocks(&bytes[3..]);
        assert_eq!((q80.len(), q80[0].d.0, q80[0].qs[31]), (1, [3, 4], 36));
        let h: &[F16Le] = blocks(&[0x00, 0x3c, 0x00, 0xc0, 0x55]);
        assert_eq!(h.iter().map(|h| h.get()).collect::<Vec<_>>(), [1.0, -2.0]);
        let bytes = 1.5f32.to_le_bytes();
        let f: &[F32Le] = blocks(&bytes);
        assert_eq!(f[0].get(), 1.5);
    }
}
