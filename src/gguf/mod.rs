//! Our own GGUF reader over one byte buffer.
//!
//! Why not candle's reader: it allocates lengths taken from the file before checking them
//! (a hostile file can abort the process) and reads through `Read + Seek`; the wasm module
//! gets the model as one byte buffer and wants zero-copy views into it.
//!
//! Every length, count and offset read from the file is checked against the bytes that
//! remain before anything is allocated, all arithmetic is checked, and every failure is a
//! typed [`Error`]; nothing here panics on any input. Only little-endian GGUF v2/v3 is read.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, ErrorCode, Result};

mod dtype;
mod reader;

pub use dtype::GgmlDType;
use reader::{align_up, RawTensor, Reader};

const MAGIC: &[u8; 4] = b"GGUF";
/// Alignment of the data section when `general.alignment` is absent (GGUF spec).
const DEFAULT_ALIGNMENT: usize = 32;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<MetaValue>),
}

impl MetaValue {
    /// Any integer type whose value is >= 0.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v as u64),
            MetaValue::U16(v) => Some(v as u64),
            MetaValue::U32(v) => Some(v as u64),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// F32 or F64 (narrowed).
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            MetaValue::F32(v) => Some(v),
            MetaValue::F64(v) => Some(v as f32),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            MetaValue::U8(_) => "u8",
            MetaValue::I8(_) => "i8",
            MetaValue::U16(_) => "u16",
            MetaValue::I16(_) => "i16",
            MetaValue::U32(_) => "u32",
            MetaValue::I32(_) => "i32",
            MetaValue::U64(_) => "u64",
            MetaValue::I64(_) => "i64",
            MetaValue::F32(_) => "f32",
            MetaValue::F64(_) => "f64",
            MetaValue::Bool(_) => "bool",
            MetaValue::String(_) => "string",
            MetaValue::Array(_) => "array",
        }
    }
}

/// One entry of the tensor table, validated against the file.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: GgmlDType,
    /// ggml order: `dims[0]` is the contiguous (row) length; e.g. `token_embd.weight` is
    /// `[hidden, vocab]`.
    pub dims: Vec<usize>,
    /// Absolute byte offset of the data in the file.
    pub offset: usize,
    pub n_bytes: usize,
}

impl TensorInfo {
    pub fn n_elements(&self) -> usize {
        // Checked at parse time; saturate rather than panic on a hand-built TensorInfo.
        self.dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).unwrap_or(usize::MAX)
    }
}

/// A parsed GGUF file: metadata, the tensor table, and the bytes the tensors point into.
#[derive(Clone)]
pub struct GgufFile {
    data: Arc<Vec<u8>>,
    version: u32,
    alignment: usize,
    metadata: Vec<(String, MetaValue)>,
    metadata_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("bytes", &self.data.len())
            .field("version", &self.version)
            .field("alignment", &self.alignment)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Parses and validates a whole GGUF file held in memory.
    pub fn parse(data: Arc<Vec<u8>>) -> Result<Self> {
        let len = data.len();
        Self::parse_with_length(data, len)
    }

    /// Parses the header (metadata and tensor table) from the first bytes of a file of
    /// `file_len` bytes, checking every tensor against that length: what is known before
    /// the weights are downloaded. A prefix that ends inside the header is `GGUF_TRUNCATED`.
    /// The result has no tensor data: only `model::inspect` uses it, and never asks for any.
    pub(crate) fn parse_header(prefix: Arc<Vec<u8>>, file_len: usize) -> Result<Self> {
        if prefix.len() > file_len {
            crate::bail!(InvalidArgument, "a header of {} bytes from a file of {file_len}", prefix.len());
        }
        Self::parse_with_length(prefix, file_len)
    }

    fn parse_with_length(data: Arc<Vec<u8>>, file_len: usize) -> Result<Self> {
        let buf: &[u8] = &data;
        if buf.is_empty() {
            return Err(Error::new(ErrorCode::GgufEmpty, "the model file is empty (0 bytes)"));
        }
        let mut r = Reader::new(buf);

        // A file shorter than the magic is not a GGUF file at all, not a truncated one.
        if buf.len() < 4 || &buf[..4] != MAGIC {
            let head = &buf[..buf.len().min(4)];
            return Err(Error::new(
                ErrorCode::GgufBadMagic,
                format!("not a GGUF file: first bytes are {head:02x?}, expected \"GGUF\""),
            ));
        }
        r.pos = 4;

        let version = r.u32("version")?;
        if version != 2 && version != 3 {
            let hint = if version.swap_bytes() == 2 || version.swap_bytes() == 3 {
                " (big-endian GGUF is not supported)"
            } else {
                ""
            };
            return Err(Error::new(
                ErrorCode::GgufUnsupportedVersion,
                format!("GGUF version {version} is not supported; only versions 2 and 3 are read{hint}"),
            ));
        }

        let n_tensors = r.u64("tensor count")?;
        let n_kv = r.u64("metadata count")?;

        // Smallest possible key/value: empty key (8-byte length) + type tag + a 1-byte value.
        let n_kv = r.check_count(n_kv, 8 + 4 + 1, "metadata key/value pairs")?;
        let mut metadata = Vec::with_capacity(n_kv);
        let mut metadata_index = HashMap::with_capacity(n_kv);
        for i in 0..n_kv {
            let key = r.string(|| format!("metadata key #{i}"))?;
            let tag = r.u32("metadata value type")?;
            let value = r.value(tag, &key, 0)?;
            if metadata_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(Error::new(ErrorCode::GgufBadMetadata, format!("duplicate metadata key {key:?}")));
            }
            metadata.push((key, value));
        }

        let alignment = read_alignment(metadata_index.get("general.alignment").map(|&i| &metadata[i].1))?;

        // Smallest possible tensor entry: empty name + rank + one dim + type + offset.
        let n_tensors = r.check_count(n_tensors, 8 + 4 + 8 + 4 + 8, "tensor table entries")?;
        let mut raw = Vec::with_capacity(n_tensors);
        let mut tensor_index = HashMap::with_capacity(n_tensors);
        for i in 0..n_tensors {
            let entry = r.tensor_entry(i)?;
            if tensor_index.insert(entry.name.clone(), raw.len()).is_some() {
                return Err(Error::new(ErrorCode::GgufBadTensor, format!("duplicate tensor name {:?}", entry.name)));
            }
            raw.push(entry);
        }

        // The data section starts at the first aligned offset after the tensor table.
        let data_start = align_up(r.pos, alignment)
            .ok_or_else(|| Error::new(ErrorCode::GgufTensorOutOfBounds, "data section offset overflows"))?;

        let tensors = place_tensors(raw, data_start, alignment, file_len)?;
        Ok(GgufFile { data, version, alignment, metadata, metadata_index, tensors, tensor_index })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn alignment(&self) -> usize {
        self.alignment
    }

    pub fn metadata(&self, key: &str) -> Option<&MetaValue> {
        self.metadata_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// Metadata keys in file order.
    pub fn metadata_keys(&self) -> impl Iterator<Item = &str> {
        self.metadata.iter().map(|(k, _)| k.as_str())
    }

    /// An unsigned integer value; `ModelConfig` naming the key when missing or of the wrong type.
    pub fn meta_u64(&self, key: &str) -> Result<u64> {
        let v = self.require(key)?;
        v.as_u64().ok_or_else(|| wrong_type(key, "a non-negative integer", v))
    }

    /// A float value (f32 or f64); `ModelConfig` naming the key when missing or of the wrong type.
    pub fn meta_f32(&self, key: &str) -> Result<f32> {
        let v = self.require(key)?;
        v.as_f32().ok_or_else(|| wrong_type(key, "a float", v))
    }

    /// A string value; `ModelConfig` naming the key when missing or of the wrong type.
    pub fn meta_str(&self, key: &str) -> Result<&str> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| wrong_type(key, "a string", v))
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The validated bytes of a tensor of this file (empty for a `TensorInfo` that does not
    /// fit this file, e.g. one from another file).
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        t.offset.checked_add(t.n_bytes).and_then(|end| self.data.get(t.offset..end)).unwrap_or(&[])
    }

    pub fn bytes(&self) -> &Arc<Vec<u8>> {
        &self.data
    }

    fn require(&self, key: &str) -> Result<&MetaValue> {
        self.metadata(key).ok_or_else(|| Error::new(ErrorCode::ModelConfig, format!("metadata key {key:?} is missing")))
    }
}

/// The data section's alignment: `general.alignment` if the file sets it, else the default.
fn read_alignment(value: Option<&MetaValue>) -> Result<usize> {
    match value {
        None => Ok(DEFAULT_ALIGNMENT),
        Some(v) => {
            let a = v.as_u64().ok_or_else(|| {
                Error::new(
                    ErrorCode::GgufBadMetadata,
                    format!("general.alignment must be an unsigned integer, found {}", v.type_name()),
                )
            })?;
            // Bounded so that aligning an offset can never overflow on 32-bit targets.
            if a == 0 || !a.is_power_of_two() || a > (1 << 24) {
                return Err(Error::new(
                    ErrorCode::GgufBadMetadata,
                    format!("general.alignment must be a power of two (at most 2^24), found {a}"),
                ));
            }
            Ok(a as usize)
        }
    }
}

/// Places each tensor of the table in the file (`data_start` + its offset), checking it is
/// aligned and lies inside the file's `file_len` bytes.
fn place_tensors(raw: Vec<RawTensor>, data_start: usize, alignment: usize, file_len: usize) -> Result<Vec<TensorInfo>> {
    let mut tensors = Vec::with_capacity(raw.len());
    for e in raw {
        if e.rel_offset % alignment as u64 != 0 {
            return Err(Error::new(
                ErrorCode::GgufMisaligned,
                format!(
                    "tensor {:?}: data offset {} is not a multiple of the alignment {alignment}",
                    e.name, e.rel_offset
                ),
            ));
        }
        let out_of_bounds = || {
            Error::new(
                ErrorCode::GgufTensorOutOfBounds,
                format!(
                    "tensor {:?}: data at relative offset {} ({} bytes) lies past the end of the file ({} bytes, data section at {data_start})",
                    e.name, e.rel_offset, e.n_bytes, file_len
                ),
            )
        };
        let offset =
            usize::try_from(e.rel_offset).ok().and_then(|o| data_start.checked_add(o)).ok_or_else(out_of_bounds)?;
        let end = offset.checked_add(e.n_bytes).ok_or_else(out_of_bounds)?;
        if end > file_len {
            return Err(out_of_bounds());
        }
        tensors.push(TensorInfo { name: e.name, dtype: e.dtype, dims: e.dims, offset, n_bytes: e.n_bytes });
    }
    Ok(tensors)
}

fn wrong_type(key: &str, expected: &str, found: &MetaValue) -> Error {
    Error::new(
        ErrorCode::ModelConfig,
        format!("metadata key {key:?} should be {expected}, found {}", found.type_name()),
    )
}
