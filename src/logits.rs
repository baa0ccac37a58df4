//! Candidate selection on a row of logits: the top-k and the argmax with one tie rule (the
//! lower id wins), and which logits a caller needs. Below both the backends (which may read
//! back only the wanted logits) and the samplers (which choose among them), so they agree.

/// Which logits a caller will look at, so that a backend can read back only those.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogitsWanted {
    /// Every logit of every row.
    All,
    /// The `k` largest logits of row 0 (ties: lower id first) and the logits at the ids in
    /// `also`; in every row, the logits at those same ids.
    Top { k: usize, also: Vec<u32> },
}

impl LogitsWanted {
    /// The ids `Top` asks for, given all of row 0 (the reference for what a backend returns).
    pub fn ids(&self, row0: &[f32]) -> Vec<u32> {
        match self {
            LogitsWanted::All => (0..row0.len() as u32).collect(),
            LogitsWanted::Top { k, also } => {
                let mut ids: Vec<u32> = top_candidates(row0, (*k).max(1)).iter().map(|c| c.0).collect();
                ids.extend(also.iter().filter(|&&i| (i as usize) < row0.len()));
                ids
            }
        }
    }
}

/// Index of the largest logit; the lowest id wins a tie.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// The `k` largest logits as (id, logit), largest first, ties broken by lower id
/// (k = 0 or k ≥ len: all of them).
pub fn top_candidates(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut cand: Vec<(u32, f32)> = logits.iter().enumerate().map(|(i, &l)| (i as u32, l)).collect();
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if k > 0 && k < cand.len() {
        cand.select_nth_unstable_by(k - 1, order);
        cand.truncate(k);
    }
    cand.sort_by(order);
    cand
}
