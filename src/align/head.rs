//! Value head files: the trained W of a PersRM context (`logits = LMHead(W·h)`), kept as
//! safetensors.
//!
//! Format (what `padlock train-head` writes and `Llama::value_head` consumes):
//! - low rank, W = I + U·V: tensors `up` `[hidden, rank]` and `down` `[rank, hidden]`;
//!   the shipped heads use rank 16 in F32, 74 KB each instead of 1.3 MB for a full
//!   576 × 576 F32 matrix (0.66 MB in F16), and the identity is exactly representable
//!   (U = 0), which is where training starts;
//! - or dense: one tensor `weight` `[hidden, hidden]`, row i giving output i.
//!
//! F32, F16 and BF16 are read. String metadata (`__metadata__`) says what the head is for
//! (`preference`, `dimension`, `heldout_accuracy`, ...). Anything else is a typed
//! `VALUE_HEAD` error, and nothing is loaded.

use std::collections::{BTreeMap, HashMap};

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, ErrorCode, Result};

/// A value head as a low-rank update of the identity: W = I + U·V.
#[derive(Debug, Clone, PartialEq)]
pub struct LowRankHead {
    pub hidden: usize,
    pub rank: usize,
    /// U, `[hidden, rank]` row-major.
    pub up: Vec<f32>,
    /// V, `[rank, hidden]` row-major.
    pub down: Vec<f32>,
}

impl LowRankHead {
    /// The identity head (U = 0) with V set by `init` (LoRA-style: V random, U zero).
    pub fn identity(hidden: usize, rank: usize, init: impl FnMut() -> f32) -> Self {
        LowRankHead {
            hidden,
            rank,
            up: vec![0.0; hidden * rank],
            down: std::iter::repeat_with(init).take(rank * hidden).collect(),
        }
    }

    /// The dense `hidden × hidden` W = I + U·V, row-major.
    pub fn to_matrix(&self) -> Vec<f32> {
        let (h, r) = (self.hidden, self.rank);
        let mut w = vec![0f32; h * h];
        for i in 0..h {
            let row = &mut w[i * h..(i + 1) * h];
            row[i] = 1.0;
            for k in 0..r {
                let u = self.up[i * r + k];
                if u != 0.0 {
                    for (wj, vj) in row.iter_mut().zip(&self.down[k * h..(k + 1) * h]) {
                        *wj += u * vj;
                    }
                }
            }
        }
        w
    }

    /// z = W·x = x + U·(V·x).
    pub fn apply(&self, x: &[f32], vx: &mut [f32], z: &mut [f32]) {
        let (h, r) = (self.hidden, self.rank);
        for (k, v) in vx.iter_mut().enumerate().take(r) {
            *v = dot(&self.down[k * h..(k + 1) * h], x);
        }
        for (i, zi) in z.iter_mut().enumerate().take(h) {
            *zi = x[i] + dot(&self.up[i * r..(i + 1) * r], vx);
        }
    }

    /// The safetensors bytes of this head (F32) with `metadata`.
    pub fn to_safetensors(&self, metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
        let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let (up, down) = (bytes(&self.up), bytes(&self.down));
        let view = |shape: Vec<usize>, data| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape, data).map_err(|e| head_err(e.to_string()))
        };
        let tensors = vec![
            ("up", view(vec![self.hidden, self.rank], &up)?),
            ("down", view(vec![self.rank, self.hidden], &down)?),
        ];
        let info: HashMap<String, String> = metadata.clone().into_iter().collect();
        safetensors::serialize(tensors, Some(info)).map_err(|e| head_err(e.to_string()))
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn head_err(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::ValueHead, message)
}

/// A value head read from a file: its dense matrix and its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadFile {
    /// `hidden × hidden`, row-major, row i giving output i.
    pub matrix: Vec<f32>,
    pub metadata: BTreeMap<String, String>,
}

/// Reads a value head for a model of hidden size `hidden` from safetensors bytes.
pub fn parse_head(bytes: &[u8], hidden: usize) -> Result<HeadFile> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| head_err(format!("not a safetensors file: {e}")))?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| head_err(format!("not a safetensors file: {e}")))?;
    let metadata: BTreeMap<String, String> = meta.metadata().clone().unwrap_or_default().into_iter().collect();
    let read = |name: &str| -> Result<Option<(Vec<usize>, Vec<f32>)>> {
        let t = match st.tensor(name) {
            Ok(t) => t,
            Err(_) => return Ok(None),
        };
        let data = t.data();
        let values: Vec<f32> = match t.dtype() {
            Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            other => return Err(head_err(format!("tensor {name:?} is {other:?}; value heads are F32, F16 or BF16"))),
        };
        if values.iter().any(|v| !v.is_finite()) {
            return Err(head_err(format!("tensor {name:?} holds a value that is not finite")));
        }
        Ok(Some((t.shape().to_vec(), values)))
    };
    let matrix = match (read("weight")?, read("up")?, read("down")?) {
        (Some((shape, w)), None, None) => {
            if shape != [hidden, hidden] {
                return Err(head_err(format!("weight has shape {shape:?}; this model needs [{hidden}, {hidden}]")));
            }
            w
        }
        (None, Some((us, up)), Some((ds, down))) => {
            let rank = us.get(1).copied().unwrap_or(0);
            if us.len() != 2 || ds.len() != 2 || us[0] != hidden || ds[1] != hidden || ds[0] != rank || rank == 0 {
                return Err(head_err(format!(
                    "up {us:?} and down {ds:?} do not make a low-rank head for hidden size {hidden} ([{hidden}, r] and [r, {hidden}])"
                )));
            }
            LowRankHead { hidden, rank, up, down }.to_matrix()
        }
        _ => {
            let names: Vec<&str> = st.names();
            return Err(head_err(format!(
                "a value head has either `weight` or both `up` and `down`; this file has {names:?}"
            )));
        }
    };
    Ok(HeadFile { matrix, metadata })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(hidden: usize, rank: usize) -> LowRankHead {
        let mut s = 1u32;
        let mut next = move || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1 << 24) as f32 - 0.5
        };
        let mut h = LowRankHead::identity(hidden, rank, &mut next);
        h.up.iter_mut().for_each(|u| *u = next());
        h
    }

    #[test]
    fn low_rank_round_trip_and_dense_matrix_agree_with_apply() {
        let head = small(8, 2);
        let meta = BTreeMap::from([("preference".to_string(), "Be brief.".to_string())]);
        let bytes = head.to_safetensors(&meta).unwrap();
        let file = parse_head(&bytes, 8).unwrap();
        assert_eq!(file.metadata, meta);
        let x: Vec<f32> = (0..8).map(|i| i as f32 * 0.25 - 1.0).collect();
        let (mut vx, mut z) = (vec![0.0; 2], vec![0.0; 8]);
        head.apply(&x, &mut vx, &mut z);
        for (i, zi) in z.iter().enumerate() {
            let dense: f32 = (0..8).map(|j| file.matrix[i * 8 + j] * x[j]).sum();
            assert!((dense - zi).abs() < 1e-5, "{dense} vs {zi}");
        }
        // U = 0 is exactly the identity.
        let id = LowRankHead::identity(8, 2, || 0.3).to_matrix();
        assert!((0..64).all(|i| id[i] == if i % 9 == 0 { 1.0 } else { 0.0 }));
    }

    #[test]
    fn bad_head_files_are_typed_errors() {
        let good = small(8, 2).to_safetensors(&BTreeMap::new()).unwrap();
        let f16_dense = {
            let data: Vec<u8> =
                (0..64).flat_map(|i| half::f16::from_f32(if i % 9 == 0 { 1.0 } else { 0.0 }).to_le_bytes()).collect();
            let t = safetensors::tensor::TensorView::new(Dtype::F16, vec![8, 8], &data).unwrap();
            safetensors::serialize(vec![("weight", t)], None).unwrap()
        };
        assert_eq!(parse_head(&f16_dense, 8).unwrap().matrix[9], 1.0);
        let nan = {
            let data: Vec<u8> = (0..64).flat_map(|i| if i == 3 { f32::NAN } else { 0.0 }.to_le_bytes()).collect();
            let t = safetensors::tensor::TensorView::new(Dtype::F32, vec![8, 8], &data).unwrap();
            safetensors::serialize(vec![("weight", t)], None).unwrap()
        };
        let ints = {
            let data = vec![0u8; 64 * 4];
            let t = safetensors::tensor::TensorView::new(Dtype::I32, vec![8, 8], &data).unwrap();
            safetensors::serialize(vec![("weight", t)], None).unwrap()
        };
        for (what, bytes, hidden) in [
            ("empty", Vec::new(), 8),
            ("garbage", b"hello, this is not a safetensors file".to_vec(), 8),
            ("truncated", good[..good.len() - 5].to_vec(), 8),
            ("wrong hidden size", good.clone(), 16),
            ("not finite", nan, 8),
            ("integers", ints, 8),
            ("dense of the wrong size", f16_dense, 4),
        ] {
            let err = parse_head(&bytes, hidden).expect_err(what);
            assert_eq!(err.code, ErrorCode::ValueHead, "{what}: {err}");
        }
    }
}
