//! The tensor element types a GGUF file may hold, and the ones this runtime reads.

use crate::error::{Error, ErrorCode, Result};

/// Tensor element types this runtime has kernels for (named as ggml names them).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlDType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    IQ4_NL,
}

impl GgmlDType {
    const SUPPORTED: &'static str =
        "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL";

    /// Every supported type, in the order of `SUPPORTED`.
    pub const ALL: [GgmlDType; 14] = [
        GgmlDType::F32,
        GgmlDType::F16,
        GgmlDType::BF16,
        GgmlDType::Q4_0,
        GgmlDType::Q4_1,
        GgmlDType::Q5_0,
        GgmlDType::Q5_1,
        GgmlDType::Q8_0,
        GgmlDType::Q2_K,
        GgmlDType::Q3_K,
        GgmlDType::Q4_K,
        GgmlDType::Q5_K,
        GgmlDType::Q6_K,
        GgmlDType::IQ4_NL,
    ];

    /// Maps a ggml type id to a supported dtype; any other type is `UnsupportedDtype`.
    pub fn from_ggml_type(t: u32) -> Result<Self> {
        match t {
            0 => Ok(GgmlDType::F32),
            1 => Ok(GgmlDType::F16),
            2 => Ok(GgmlDType::Q4_0),
            3 => Ok(GgmlDType::Q4_1),
            6 => Ok(GgmlDType::Q5_0),
            7 => Ok(GgmlDType::Q5_1),
            8 => Ok(GgmlDType::Q8_0),
            10 => Ok(GgmlDType::Q2_K),
            11 => Ok(GgmlDType::Q3_K),
            12 => Ok(GgmlDType::Q4_K),
            13 => Ok(GgmlDType::Q5_K),
            14 => Ok(GgmlDType::Q6_K),
            20 => Ok(GgmlDType::IQ4_NL),
            30 => Ok(GgmlDType::BF16),
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

    /// ggml's type id (what a GGUF file stores).
    pub fn ggml_type(self) -> u32 {
        match self {
            GgmlDType::F32 => 0,
            GgmlDType::F16 => 1,
            GgmlDType::Q4_0 => 2,
            GgmlDType::Q4_1 => 3,
            GgmlDType::Q5_0 => 6,
            GgmlDType::Q5_1 => 7,
            GgmlDType::Q8_0 => 8,
            GgmlDType::Q2_K => 10,
            GgmlDType::Q3_K => 11,
            GgmlDType::Q4_K => 12,
            GgmlDType::Q5_K => 13,
            GgmlDType::Q6_K => 14,
            GgmlDType::IQ4_NL => 20,
            GgmlDType::BF16 => 30,
        }
    }

    /// Elements per block.
    pub const fn block_size(self) -> usize {
        match self {
            GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16 => 1,
            GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q8_0 => 32,
            GgmlDType::IQ4_NL => 32,
            GgmlDType::Q2_K | GgmlDType::Q3_K | GgmlDType::Q4_K | GgmlDType::Q5_K | GgmlDType::Q6_K => 256,
        }
    }

    /// Bytes per block (ggml's `type_size`; the layouts are in `backend/cpu/quant/blocks.rs`).
    pub const fn block_bytes(self) -> usize {
        match self {
            GgmlDType::F32 => 4,
            GgmlDType::F16 | GgmlDType::BF16 => 2,
            GgmlDType::Q4_0 | GgmlDType::IQ4_NL => 18,
            GgmlDType::Q4_1 => 20,
            GgmlDType::Q5_0 => 22,
            GgmlDType::Q5_1 => 24,
            GgmlDType::Q8_0 => 34,
            GgmlDType::Q2_K => 84,
            GgmlDType::Q3_K => 110,
            GgmlDType::Q4_K => 144,
            GgmlDType::Q5_K => 176,
            GgmlDType::Q6_K => 210,
        }
    }

    /// Where a block keeps its f16 scales (and minimums), in bytes from its start.
    pub fn f16_scale_offsets(self) -> &'static [usize] {
        match self {
            GgmlDType::F32 | GgmlDType::BF16 => &[],
            GgmlDType::F16 | GgmlDType::Q4_0 | GgmlDType::Q5_0 | GgmlDType::Q8_0 | GgmlDType::IQ4_NL => &[0],
            GgmlDType::Q4_1 | GgmlDType::Q5_1 | GgmlDType::Q4_K | GgmlDType::Q5_K => &[0, 2],
            GgmlDType::Q2_K => &[80, 82],
            GgmlDType::Q3_K => &[108],
            GgmlDType::Q6_K => &[208],
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
            GgmlDType::BF16 => "BF16",
            GgmlDType::Q4_0 => "Q4_0",
            GgmlDType::Q4_1 => "Q4_1",
            GgmlDType::Q5_0 => "Q5_0",
            GgmlDType::Q5_1 => "Q5_1",
            GgmlDType::Q8_0 => "Q8_0",
            GgmlDType::Q2_K => "Q2_K",
            GgmlDType::Q3_K => "Q3_K",
            GgmlDType::Q4_K => "Q4_K",
            GgmlDType::Q5_K => "Q5_K",
            GgmlDType::Q6_K => "Q6_K",
            GgmlDType::IQ4_NL => "IQ4_NL",
        }
    }

    /// The index of the first element (for a quantized type, the first block) of `data` whose
    /// value or scale is not finite. Quantized blocks store their scales (and Q4_1 its minimum)
    /// as f16 (see [`f16_scale_offsets`](Self::f16_scale_offsets)); the quants themselves are
    /// small integers.
    pub fn first_non_finite(self, data: &[u8]) -> Option<usize> {
        let f16_at = |b: &[u8], at: usize| half::f16::from_le_bytes([b[at], b[at + 1]]).is_finite();
        let chunks = data.chunks_exact(self.block_bytes());
        match self {
            GgmlDType::F32 => {
                chunks.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite()).position(|ok| !ok)
            }
            GgmlDType::BF16 => chunks.map(|b| half::bf16::from_le_bytes([b[0], b[1]]).is_finite()).position(|ok| !ok),
            _ => {
                let offsets = self.f16_scale_offsets();
                chunks.map(|b| offsets.iter().all(|&at| f16_at(b, at))).position(|ok| !ok)
            }
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
