//! A judgement by the base model itself, as a transparent and reproducible measure: the
//! model reads the question and the answer, is asked a yes/no question about the answer
//! ("Is the answer funny?"), and the measure is its log-odds of "Yes" against "No" for the
//! first token of its reply, log P(Yes) − log P(No). Greedy-free (one forward pass, no
//! sampling), so the same model file always gives the same number.

use crate::backend::Backend;
use crate::error::Result;
use crate::generate::Engine;
use crate::model::llama::Logits;

/// The yes/no question the humour judgement asks about an answer.
pub const FUNNY: &str = "Is the answer funny?";

/// Longest answer the judge reads (in characters; the evaluation's answers are shorter).
const MAX_ANSWER_CHARS: usize = 4000;

/// The user message that asks `judgement` about `answer` to `question`.
pub fn judge_message(question: &str, answer: &str, judgement: &str) -> String {
    let answer: String = answer.chars().take(MAX_ANSWER_CHARS).collect();
    format!("Here is a question and an answer.\n\nQuestion: {question}\n\nAnswer: {answer}\n\n{judgement} Reply with Yes or No.")
}

/// The single token of `word` (the judge's reply words must be one token each).
fn single_token<B: Backend>(engine: &Engine<B>, word: &str) -> Result<u32> {
    match engine.tokenizer.encode(word)?.as_slice() {
        [id] => Ok(*id),
        ids => crate::bail!(InvalidArgument, "{word:?} is {} tokens for this tokenizer; the judge needs one", ids.len()),
    }
}

/// log P(Yes) − log P(No) of the model's first reply token to [`judge_message`].
pub async fn judge<B: Backend>(engine: &Engine<B>, question: &str, answer: &str, judgement: &str) -> Result<f64> {
    let (yes, no) = (single_token(engine, "Yes")?, single_token(engine, "No")?);
    let ids = engine.chat_prompt(&judge_message(question, answer, judgement), None)?;
    let mut seq = engine.model.new_sequence()?;
    let logits = engine.model.forward_one(&mut seq, &ids, Logits::Last).await?;
    Ok(logits[yes as usize] as f64 - logits[no as usize] as f64)
}
