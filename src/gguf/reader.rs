//! The bounds-checked cursor `GgufFile::parse` reads the header, the metadata and the
//! tensor table with.

use super::{GgmlDType, MetaValue};
use crate::error::{Error, ErrorCode, Result};

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

pub(super) fn align_up(pos: usize, alignment: usize) -> Option<usize> {
    let rem = pos % alignment;
    if rem == 0 {
        Some(pos)
    } else {
        pos.checked_add(alignment - rem)
    }
}

/// A tensor table entry before its offset is placed in the file.
pub(super) struct RawTensor {
    pub(super) name: String,
    pub(super) dtype: GgmlDType,
    pub(super) dims: Vec<usize>,
    pub(super) rel_offset: u64,
    pub(super) n_bytes: usize,
}

/// A bounds-checked little-endian cursor.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pub(super) pos: usize,
    /// Array elements still allowed (see `MAX_ARRAY_ELEMENTS`).
    array_budget: usize,
}

/// What is being read, for an error message: text, or a function that writes it, so that
/// the text is only built when there is an error (a million array elements must not each
/// format their key).
pub(super) trait What {
    fn text(&self) -> String;
}

impl What for &str {
    fn text(&self) -> String {
        self.to_string()
    }
}

impl What for &String {
    fn text(&self) -> String {
        self.to_string()
    }
}

impl<F: Fn() -> String> What for &F {
    fn text(&self) -> String {
        self()
    }
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0, array_budget: MAX_ARRAY_ELEMENTS }
    }

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

    fn take(&mut self, n: usize, what: impl What) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.truncated(&what.text(), n as u64));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: impl What) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(super) fn u32(&mut self, what: impl What) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(super) fn u64(&mut self, what: impl What) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Checks that `count` items of at least `min_bytes` each can still be in the file, so
    /// that the count is safe to allocate for.
    pub(super) fn check_count(&self, count: u64, min_bytes: u64, what: &str) -> Result<usize> {
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
    pub(super) fn string(&mut self, what: impl Fn() -> String) -> Result<String> {
        let len = self.u64(&what)?;
        if len > self.remaining() as u64 {
            return Err(self.truncated(&what(), len));
        }
        let bytes = self.take(len as usize, &what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(Error::new(ErrorCode::GgufBadMetadata, format!("{} is not valid UTF-8 ({e})", what()))),
        }
    }

    pub(super) fn value(&mut self, tag: u32, key: &str, depth: usize) -> Result<MetaValue> {
        let what = || format!("metadata value of {key:?}");
        Ok(match tag {
            0 => MetaValue::U8(self.array::<1>(&what)?[0]),
            1 => MetaValue::I8(self.array::<1>(&what)?[0] as i8),
            2 => MetaValue::U16(u16::from_le_bytes(self.array(&what)?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.array(&what)?)),
            4 => MetaValue::U32(u32::from_le_bytes(self.array(&what)?)),
            5 => MetaValue::I32(i32::from_le_bytes(self.array(&what)?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.array(&what)?)),
            7 => match self.array::<1>(&what)?[0] {
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
                let elem_tag = self.u32(&what)?;
                let min = min_value_bytes(elem_tag).ok_or_else(|| bad_tag(key, elem_tag))?;
                let count = self.u64(&what)?;
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
            10 => MetaValue::U64(u64::from_le_bytes(self.array(&what)?)),
            11 => MetaValue::I64(i64::from_le_bytes(self.array(&what)?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.array(&what)?)),
            other => return Err(bad_tag(key, other)),
        })
    }

    pub(super) fn tensor_entry(&mut self, i: usize) -> Result<RawTensor> {
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
