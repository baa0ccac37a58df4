//! The tensor element types a GGUF file may hold, and the ones this runtime reads.

use crate::error::{Error, ErrorCode, Result};

/// Tensor element types this runtime has kernels for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlDType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q8_0,
}

impl GgmlDType {
    const SUPPORTED: &'static str = "F32, F16, Q4_0, Q4_1, Q8_0";

    /// Maps a ggml type id to a supported dtype; any other type is `UnsupportedDtype`.
    pub fn from_ggml_type(t: u32) -> Result<Self> {
        match t {
            0 => Ok(GgmlDType::F32),
            1 => Ok(GgmlDType::F16),
            2 => Ok(GgmlDType::Q4_0),
            3 => Ok(GgmlDType::Q4_1),
            8 => Ok(GgmlDType::Q8_0),
            other => Err(Error::new(
                ErrorCode::UnsupportedDtype,
                format!(
                    "tensor type {} (type {other}) is not supported; supported types: {}",
                    ggml_type_name(other),
                    Self::SUPPORTED
                ),
            )),
        }
    }

    /// Elements per block.
    pub fn block_size(self) -> usize {
        match self {
            GgmlDType::F32 | GgmlDType::F16 => 1,
            GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q8_0 => 32,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            GgmlDType::F32 => 4,
            GgmlDType::F16 => 2,
            GgmlDType::Q4_0 => 18, // f16 scale + 16 bytes of nibbles
            GgmlDType::Q4_1 => 20, // f16 scale + f16 min + 16 bytes of nibbles
            GgmlDType::Q8_0 => 34, // f16 scale + 32 bytes
        }
    }

    /// Bytes of a row of `n_elements` (a multiple of [`block_size`](Self::block_size)).
    pub fn row_bytes(self, n_elements: usize) -> usize {
        (n_elements / self.block_size()).saturating_mul(self.block_bytes())
    }

    pub fn name(self) -> &'static str {
        match self {
            GgmlDType::F32 => "F32",
            GgmlDType::F16 => "F16",
            GgmlDType::Q4_0 => "Q4_0",
            GgmlDType::Q4_1 => "Q4_1",
            GgmlDType::Q8_0 => "Q8_0",
        }
    }

    /// The index of the first element (for a quantized type, the first block) of `data` whose
    /// value or scale is not finite. Quantized blocks store their scales (and Q4_1 its minimum)
    /// as f16 at the start of the block; the quants themselves are small integers.
    pub fn first_non_finite(self, data: &[u8]) -> Option<usize> {
        let f16_at = |b: &[u8], at: usize| half::f16::from_le_bytes([b[at], b[at + 1]]).is_finite();
        let chunks = data.chunks_exact(self.block_bytes());
        match self {
            GgmlDType::F32 => {
                chunks.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite()).position(|ok| !ok)
            }
            GgmlDType::F16 | GgmlDType::Q4_0 | GgmlDType::Q8_0 => chunks.map(|b| f16_at(b, 0)).position(|ok| !ok),
            GgmlDType::Q4_1 => chunks.map(|b| f16_at(b, 0) && f16_at(b, 2)).position(|ok| !ok),
        }
    }

    /// `row_bytes` with overflow checking, for sizes read from a file.
    pub(super) fn checked_row_bytes(self, n_elements: usize) -> Option<usize> {
        (n_elements / self.block_size()).checked_mul(self.block_bytes())
    }
}

/// Names of ggml types, so an unsupported-type error says what the file holds.
fn ggml_type_name(t: u32) -> &'static str {
    match t {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        4 => "Q4_2",
        5 => "Q4_3",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        30 => "BF16",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => "unknown",
    }
}
