//! What a GGUF file needs, known from its header alone (its first megabytes): whether this
//! runtime reads it, and how much memory its weights and its keys and values take, so that a
//! page can refuse a model before downloading the weights rather than after.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;

use crate::error::Result;
use crate::gguf::GgufFile;
use crate::model::config::LlamaConfig;

/// A model file's needs, from its header.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSummary {
    pub architecture: String,
    /// Weights (elements of every tensor).
    pub parameters: u64,
    /// Bytes of all tensors as stored (what loading holds in memory).
    pub weight_bytes: u64,
    /// The largest single tensor, in bytes (what a GPU must bind at once).
    pub largest_tensor_bytes: u64,
    pub context_length: usize,
    /// Keys and values of one position of one sequence, all layers (f32).
    pub kv_bytes_per_position: u64,
    /// The tensor types the file holds, by name, sorted.
    pub tensor_types: Vec<String>,
}

/// Reads the header from `prefix`, the first bytes of a file of `file_len` bytes. Errors are
/// the ones loading the whole file would give for the header (`UNSUPPORTED_DTYPE`,
/// `UNSUPPORTED_ARCHITECTURE`, `MODEL_CONFIG`, …); a prefix that ends inside the header is
/// `GGUF_TRUNCATED` (ask for more bytes).
pub fn inspect(prefix: Vec<u8>, file_len: usize) -> Result<ModelSummary> {
    let g = GgufFile::parse_header(Arc::new(prefix), file_len)?;
    let config = LlamaConfig::from_gguf(&g)?;
    let tensors = g.tensors();
    Ok(ModelSummary {
        architecture: g.meta_str("general.architecture")?.to_string(),
        parameters: tensors.iter().map(|t| t.n_elements() as u64).sum(),
        weight_bytes: tensors.iter().map(|t| t.n_bytes as u64).sum(),
        largest_tensor_bytes: tensors.iter().map(|t| t.n_bytes as u64).max().unwrap_or(0),
        context_length: config.context_length,
        kv_bytes_per_position: config.attention_shape().kv_bytes_per_position(),
        tensor_types: tensors
            .iter()
            .map(|t| t.dtype.name())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(String::from)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ending_inside_the_header_asks_for_more() {
        let e = inspect(b"GGUF\x03\x00\x00\x00".to_vec(), 1 << 20).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::GgufTruncated, "{e}");
        let e = inspect(vec![0; 16], 8).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidArgument, "{e}");
    }
}
