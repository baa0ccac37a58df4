//! The GGUF weight formats as `#[repr(C)]` structs (ggml's `block_q4_0`, `block_q4_K`, …),
//! viewed in place over a tensor's bytes with bytemuck.
//!
//! GGUF aligns a tensor's data to 32 bytes, but most blocks are not a multiple of 4 bytes
//! long (18, 22, 34, 110, 210, …), so every field is made of bytes (scales as little-endian
//! [`F16Le`]): the structs have alignment 1 and a block can be viewed at any offset.
//!
//! The K-quants hold 256 weights in 8 or 16 sub-blocks, each with its own small integer
//! scale (and minimum) that multiplies the block's f16 scale; how the sub-block scales are
//! packed is in `scalar.rs`, which decodes them.

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

/// A little-endian bfloat16 (the top half of an f32), as GGUF stores BF16 weights.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct BF16Le(pub [u8; 2]);

impl BF16Le {
    #[inline]
    pub fn get(self) -> f32 {
        f32::from_bits((u16::from_le_bytes(self.0) as u32) << 16)
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

/// Q5_0: 32 weights `d·(q − 16)`, q unsigned 5-bit: the low 4 bits packed as in Q4_0, bit 4
/// of element j in bit j of `qh` (little-endian u32).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct BlockQ5_0 {
    pub d: F16Le,
    pub qh: [u8; 4],
    pub qs: [u8; 16],
}

/// Q5_1: 32 weights `d·q + m`, q unsigned 5-bit, packed as in Q5_0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct BlockQ5_1 {
    pub d: F16Le,
    pub m: F16Le,
    pub qh: [u8; 4],
    pub qs: [u8; 16],
}

/// IQ4_NL: 32 weights `d·T[q]`, q a 4-bit index into a fixed non-linear table, packed as in
/// Q4_0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct BlockIq4Nl {
    pub d: F16Le,
    pub qs: [u8; 16],
}

/// Q2_K: 256 weights in 16 sub-blocks of 16, `d·s·q − dmin·m`, q 2-bit; `scales[i]` holds
/// sub-block i's 4-bit s (low nibble) and m (high nibble).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct BlockQ2K {
    pub scales: [u8; 16],
    pub qs: [u8; 64],
    pub d: F16Le,
    pub dmin: F16Le,
}

/// Q3_K: 256 weights in 16 sub-blocks of 16, `d·(s − 32)·(q − 4·[high bit clear])`, q 2 low
/// bits in `qs` and the third in `hmask`; 16 six-bit scales packed in 12 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct BlockQ3K {
    pub hmask: [u8; 32],
    pub qs: [u8; 64],
    pub scales: [u8; 12],
    pub d: F16Le,
}

/// Q4_K: 256 weights in 8 sub-blocks of 32, `d·s·q − dmin·m`, q 4-bit; 8 six-bit (s, m)
/// pairs packed in 12 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct BlockQ4K {
    pub d: F16Le,
    pub dmin: F16Le,
    pub scales: [u8; 12],
    pub qs: [u8; 128],
}

/// Q5_K: Q4_K with a fifth bit per weight in `qh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct BlockQ5K {
    pub d: F16Le,
    pub dmin: F16Le,
    pub scales: [u8; 12],
    pub qh: [u8; 32],
    pub qs: [u8; 128],
}

/// Q6_K: 256 weights in 16 sub-blocks of 16, `d·s·(q − 32)`, q 6-bit (4 low bits in `ql`, 2
/// high bits in `qh`), s a signed 8-bit scale.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct BlockQ6K {
    pub ql: [u8; 128],
    pub qh: [u8; 64],
    pub scales: [i8; 16],
    pub d: F16Le,
}

/// 32 consecutive F32 weights: the group the SIMD kernels take an F32 row in.
pub(crate) type GroupF32 = [F32Le; GROUP];
/// 32 consecutive F16 weights.
pub(crate) type GroupF16 = [F16Le; GROUP];

// ggml's sizes, and alignment 1 (any offset in the file is a valid block).
const _: () = {
    use crate::gguf::GgmlDType as T;
    let sizes = [
        (T::F32, size_of::<F32Le>(), align_of::<F32Le>()),
        (T::F16, size_of::<F16Le>(), align_of::<F16Le>()),
        (T::BF16, size_of::<BF16Le>(), align_of::<BF16Le>()),
        (T::Q4_0, size_of::<BlockQ4_0>(), align_of::<BlockQ4_0>()),
        (T::Q4_1, size_of::<BlockQ4_1>(), align_of::<BlockQ4_1>()),
        (T::Q5_0, size_of::<BlockQ5_0>(), align_of::<BlockQ5_0>()),
        (T::Q5_1, size_of::<BlockQ5_1>(), align_of::<BlockQ5_1>()),
        (T::Q8_0, size_of::<BlockQ8_0>(), align_of::<BlockQ8_0>()),
        (T::Q2_K, size_of::<BlockQ2K>(), align_of::<BlockQ2K>()),
        (T::Q3_K, size_of::<BlockQ3K>(), align_of::<BlockQ3K>()),
        (T::Q4_K, size_of::<BlockQ4K>(), align_of::<BlockQ4K>()),
        (T::Q5_K, size_of::<BlockQ5K>(), align_of::<BlockQ5K>()),
        (T::Q6_K, size_of::<BlockQ6K>(), align_of::<BlockQ6K>()),
        (T::IQ4_NL, size_of::<BlockIq4Nl>(), align_of::<BlockIq4Nl>()),
    ];
    let mut i = 0;
    while i < sizes.len() {
        assert!(sizes[i].0.block_bytes() == sizes[i].1 && sizes[i].2 == 1);
        i += 1;
    }
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
