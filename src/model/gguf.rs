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

const MAGIC: &[u8; 4] = b"GGUF";
/// Alignment of the data section when `general.alignment` is absent (GGUF spec).
const DEFAULT_ALIGNMENT: usize = 32;
/// Arrays of arrays are legal GGUF, but nothing real nests deeply; a bound keeps a hostile
/// file from recursing the stack away.
const MAX_ARRAY_DEPTH: usize = 4;
/// ggml supports at most 4 dimensions.
const MAX_RANK: usize = 4;
/// Most array elements all metadata may hold together. A parsed value takes up to 32 bytes
/// for each byte of a u8 array, so without a cap a file that is merely large could make us
/// allocate many times its size. Real files hold a few hundred thousand (vocabulary, merges,
/// token types); Gemma-sized vocabularies stay well below this.
const MAX_ARRAY_ELEMENTS: usize = 1 << 23;

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

    /// `row_bytes` with overflow checking, for sizes read from a file.
    fn checked_row_bytes(self, n_elements: usize) -> Option<usize> {
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
        let buf: &[u8] = &data;
        if buf.is_empty() {
            return Err(Error::new(ErrorCode::GgufEmpty, "the model file is empty (0 bytes)"));
        }
        let mut r = Reader { buf, pos: 0, array_budget: MAX_ARRAY_ELEMENTS };

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

        let alignment = match metadata_index.get("general.alignment").map(|&i| &metadata[i].1) {
            None => DEFAULT_ALIGNMENT,
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
                a as usize
            }
        };

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
                        e.name, e.rel_offset, e.n_bytes, buf.len()
                    ),
                )
            };
            let offset =
                usize::try_from(e.rel_offset).ok().and_then(|o| data_start.checked_add(o)).ok_or_else(out_of_bounds)?;
            let end = offset.checked_add(e.n_bytes).ok_or_else(out_of_bounds)?;
            if end > buf.len() {
                return Err(out_of_bounds());
            }
            tensors.push(TensorInfo { name: e.name, dtype: e.dtype, dims: e.dims, offset, n_bytes: e.n_bytes });
        }

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

fn wrong_type(key: &str, expected: &str, found: &MetaValue) -> Error {
    Error::new(
        ErrorCode::ModelConfig,
        format!("metadata key {key:?} should be {expected}, found {}", found.type_name()),
    )
}

fn align_up(pos: usize, alignment: usize) -> Option<usize> {
    let rem = pos % alignment;
    if rem == 0 {
        Some(pos)
    } else {
        pos.checked_add(alignment - rem)
    }
}

/// A tensor table entry before its offset is placed in the file.
struct RawTensor {
    name: String,
    dtype: GgmlDType,
    dims: Vec<usize>,
    rel_offset: u64,
    n_bytes: usize,
}

/// A bounds-checked little-endian cursor.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Array elements still allowed (see `MAX_ARRAY_ELEMENTS`).
    array_budget: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn truncated(&self, what: &str, need: u64) -> Error {
        Error::new(
            ErrorCode::GgufTruncated,
            format!(
                "file ends while reading {what}: need {need} bytes at offset {}, only {} left",
                self.pos,
                self.remaining()
            ),
        )
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.truncated(what, n as u64));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Checks that `count` items of at least `min_bytes` each can still be in the file, so
    /// that the count is safe to allocate for.
    fn check_count(&self, count: u64, min_bytes: u64, what: &str) -> Result<usize> {
        match count.checked_mul(min_bytes) {
            Some(need) if need <= self.remaining() as u64 => {
                // need <= remaining, so count fits in usize.
                Ok(count as usize)
            }
            need => Err(Error::new(
                ErrorCode::GgufTruncated,
                format!(
                    "file claims {count} {what} at offset {}, which needs at least {} bytes; only {} left",
                    self.pos,
                    need.map_or_else(|| "2^64".to_string(), |n| n.to_string()),
                    self.remaining()
                ),
            )),
        }
    }

    /// A GGUF string: u64 length then UTF-8 bytes.
    fn string(&mut self, what: impl Fn() -> String) -> Result<String> {
        let len = self.u64(&what())?;
        if len > self.remaining() as u64 {
            return Err(self.truncated(&what(), len));
        }
        let bytes = self.take(len as usize, &what())?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(Error::new(ErrorCode::GgufBadMetadata, format!("{} is not valid UTF-8 ({e})", what()))),
        }
    }

    fn value(&mut self, tag: u32, key: &str, depth: usize) -> Result<MetaValue> {
        let what = || format!("metadata value of {key:?}");
        Ok(match tag {
            0 => MetaValue::U8(self.array::<1>(&what())?[0]),
            1 => MetaValue::I8(self.array::<1>(&what())?[0] as i8),
            2 => MetaValue::U16(u16::from_le_bytes(self.array(&what())?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.array(&what())?)),
            4 => MetaValue::U32(u32::from_le_bytes(self.array(&what())?)),
            5 => MetaValue::I32(i32::from_le_bytes(self.array(&what())?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.array(&what())?)),
            7 => match self.array::<1>(&what())?[0] {
                0 => MetaValue::Bool(false),
                1 => MetaValue::Bool(true),
                b => {
                    return Err(Error::new(
                        ErrorCode::GgufBadMetadata,
                        format!("metadata {key:?}: bool value must be 0 or 1, found {b}"),
                    ))
                }
            },
            8 => MetaValue::String(self.string(what)?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(Error::new(
                        ErrorCode::GgufBadMetadata,
                        format!("metadata {key:?}: arrays nested deeper than {MAX_ARRAY_DEPTH}"),
                    ));
                }
                let elem_tag = self.u32(&what())?;
                let min = min_value_bytes(elem_tag).ok_or_else(|| bad_tag(key, elem_tag))?;
                let count = self.u64(&what())?;
                let count = self.check_count(count, min, &format!("array elements of {key:?}"))?;
                self.array_budget = self.array_budget.checked_sub(count).ok_or_else(|| {
                    Error::new(
                        ErrorCode::GgufBadMetadata,
                        format!("metadata {key:?}: arrays hold more than {MAX_ARRAY_ELEMENTS} elements in total"),
                    )
                })?;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.value(elem_tag, key, depth + 1)?);
                }
                MetaValue::Array(items)
            }
            10 => MetaValue::U64(u64::from_le_bytes(self.array(&what())?)),
            11 => MetaValue::I64(i64::from_le_bytes(self.array(&what())?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.array(&what())?)),
            other => return Err(bad_tag(key, other)),
        })
    }

    fn tensor_entry(&mut self, i: usize) -> Result<RawTensor> {
        let name = self.string(|| format!("name of tensor #{i}"))?;
        let what = format!("tensor table entry {name:?}");
        let bad = |msg: String| Error::new(ErrorCode::GgufBadTensor, format!("tensor {name:?}: {msg}"));

        let rank = self.u32(&what)? as usize;
        if rank == 0 || rank > MAX_RANK {
            return Err(bad(format!("rank {rank} is not in 1..={MAX_RANK}")));
        }
        let mut dims = Vec::with_capacity(rank);
        for _ in 0..rank {
            let d = self.u64(&what)?;
            let d = usize::try_from(d).map_err(|_| bad(format!("dimension {d} is too large")))?;
            dims.push(d);
        }
        let ggml_type = self.u32(&what)?;
        let rel_offset = self.u64(&what)?;

        if dims.contains(&0) {
            return Err(bad(format!("zero dimension in {dims:?}")));
        }
        let n_elements = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| bad(format!("element count of {dims:?} overflows")))?;
        let dtype = GgmlDType::from_ggml_type(ggml_type)
            .map_err(|e| Error::new(e.code, format!("tensor {name:?}: {}", e.message)))?;
        if dims[0] % dtype.block_size() != 0 {
            return Err(bad(format!(
                "row length {} is not a multiple of the {} block size {}",
                dims[0],
                dtype.name(),
                dtype.block_size()
            )));
        }
        let n_bytes = dtype
            .checked_row_bytes(dims[0])
            .and_then(|rb| rb.checked_mul(n_elements / dims[0]))
            .ok_or_else(|| bad(format!("byte size of {dims:?} overflows")))?;
        Ok(RawTensor { name, dtype, dims, rel_offset, n_bytes })
    }
}

fn bad_tag(key: &str, tag: u32) -> Error {
    Error::new(ErrorCode::GgufBadMetadata, format!("metadata {key:?}: unknown value type tag {tag}"))
}

/// The fewest bytes a value of this type tag can occupy (None for an unknown tag).
fn min_value_bytes(tag: u32) -> Option<u64> {
    Some(match tag {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        8 => 8,  // length prefix
        9 => 12, // element type + count
        _ => return None,
    })
}
