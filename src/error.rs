//! One error type for the whole crate. Every error carries a stable code (a short
//! SCREAMING_SNAKE string) that JavaScript reads as `err.code`; messages may change,
//! codes may not.

use std::fmt;

/// Stable error codes. Never renumber or rename one: pages match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The model file has no bytes at all.
    GgufEmpty,
    /// The first four bytes are not `GGUF`.
    GgufBadMagic,
    /// A GGUF version this reader does not know (only 2 and 3 are read).
    GgufUnsupportedVersion,
    /// The file ends before a header, metadata value or tensor table entry does.
    GgufTruncated,
    /// Metadata that is malformed: a bad type tag, bad UTF-8, a duplicate key, a value of the wrong type.
    GgufBadMetadata,
    /// A tensor table entry that is malformed: bad rank, zero or overflowing dimensions, duplicate name.
    GgufBadTensor,
    /// A tensor's data lies (partly) past the end of the file.
    GgufTensorOutOfBounds,
    /// A tensor's data offset is not a multiple of the file's alignment.
    GgufMisaligned,
    /// A tensor type this runtime has no kernels for.
    UnsupportedDtype,
    /// A model architecture other than `llama`.
    UnsupportedArchitecture,
    /// Metadata or tensors the model needs are missing or have the wrong shape.
    ModelConfig,
    /// A weight tensor holds values that are not finite (NaN or infinity; the message names it).
    ModelWeights,
    /// The tokenizer could not be built or could not encode/decode.
    Tokenizer,
    /// The chat template could not be compiled or rendered.
    ChatTemplate,
    /// The prompt (plus what is to be generated) does not fit in the context.
    PromptTooLong,
    /// A caller-supplied option is out of range.
    InvalidArgument,
    /// Generation was cancelled by the caller.
    Cancelled,
    /// The runtime is already generating; one generation at a time.
    Busy,
    /// The compute backend failed.
    Backend,
    /// Reading or writing a file failed.
    Io,
    /// A preference tries to switch off the universal values (harmlessness).
    UnsafePreference,
    /// No WebGPU adapter or device could be had (the browser has no WebGPU, or no driver).
    GpuUnavailable,
    /// The model (a tensor, the KV cache, a batch) does not fit the GPU adapter's limits.
    GpuLimits,
    /// A value head file that cannot be used: not safetensors, missing or misshapen
    /// tensors for this model, values that are not finite.
    ValueHead,
    /// The preference store (IndexedDB, or the native store's files) failed.
    Storage,
    /// The browser refused the write: the origin's storage quota is used up. Nothing was changed.
    QuotaExceeded,
    /// A stored record or an export could not be decrypted (wrong key or passphrase, or altered data).
    DecryptFailed,
    /// An import is not a valid padlock memory export. Nothing was changed.
    InvalidImport,
    /// No preference (or other record) with that id.
    NotFound,
    /// The store was written by a newer padlock than this one.
    SchemaVersion,
    /// The memory was closed, e.g. because another tab asked to forget everything.
    StorageClosed,
    /// Another tab keeps the memory open with an older padlock and does not let it upgrade.
    StorageBlocked,
    /// The device's memory (wasm's 4 GiB, or the machine's) cannot hold what a request or a
    /// model needs; nothing was changed.
    MemoryLimit,
    /// The memory holds records but its key is gone: they cannot be read. Nothing was changed
    /// (forget the memory, then import an export, to start again).
    MemoryKeyMissing,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::GgufEmpty => "GGUF_EMPTY",
            ErrorCode::GgufBadMagic => "GGUF_BAD_MAGIC",
            ErrorCode::GgufUnsupportedVersion => "GGUF_UNSUPPORTED_VERSION",
            ErrorCode::GgufTruncated => "GGUF_TRUNCATED",
            ErrorCode::GgufBadMetadata => "GGUF_BAD_METADATA",
            ErrorCode::GgufBadTensor => "GGUF_BAD_TENSOR",
            ErrorCode::GgufTensorOutOfBounds => "GGUF_TENSOR_OUT_OF_BOUNDS",
            ErrorCode::GgufMisaligned => "GGUF_MISALIGNED",
            ErrorCode::UnsupportedDtype => "UNSUPPORTED_DTYPE",
            ErrorCode::UnsupportedArchitecture => "UNSUPPORTED_ARCHITECTURE",
            ErrorCode::ModelConfig => "MODEL_CONFIG",
            ErrorCode::ModelWeights => "MODEL_WEIGHTS",
            ErrorCode::Tokenizer => "TOKENIZER",
            ErrorCode::ChatTemplate => "CHAT_TEMPLATE",
            ErrorCode::PromptTooLong => "PROMPT_TOO_LONG",
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::Cancelled => "CANCELLED",
            ErrorCode::Busy => "BUSY",
            ErrorCode::Backend => "BACKEND",
            ErrorCode::Io => "IO",
            ErrorCode::UnsafePreference => "UNSAFE_PREFERENCE",
            ErrorCode::GpuUnavailable => "GPU_UNAVAILABLE",
            ErrorCode::GpuLimits => "GPU_LIMITS",
            ErrorCode::ValueHead => "VALUE_HEAD",
            ErrorCode::Storage => "STORAGE",
            ErrorCode::QuotaExceeded => "QUOTA_EXCEEDED",
            ErrorCode::DecryptFailed => "DECRYPT_FAILED",
            ErrorCode::InvalidImport => "INVALID_IMPORT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::SchemaVersion => "SCHEMA_VERSION",
            ErrorCode::StorageClosed => "STORAGE_CLOSED",
            ErrorCode::StorageBlocked => "STORAGE_BLOCKED",
            ErrorCode::MemoryKeyMissing => "MEMORY_KEY_MISSING",
            ErrorCode::MemoryLimit => "MEMORY_LIMIT",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The crate's error: a stable code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error { code, message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

/// `{ "code": "STABLE_CODE", "message": "..." }`, as pages and exports show an error.
impl serde::Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Error", 2)?;
        st.serialize_field("code", self.code.as_str())?;
        st.serialize_field("message", &self.message)?;
        st.end()
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::new(ErrorCode::Io, e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `Err(Error::new(code, format!(...)))` in one line.
#[macro_export]
macro_rules! bail {
    ($code:ident, $($fmt:tt)+) => {
        return Err($crate::error::Error::new($crate::error::ErrorCode::$code, format!($($fmt)+)))
    };
}
