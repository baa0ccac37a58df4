//! Evaluation and training data for PAD (native only): the preference dimensions, text
//! measures, the model's own yes/no judgement, contrastive preference pairs and the evaluation runner behind `padlock eval`.

pub mod dimensions;
pub mod judge;
pub mod measures;
pub mod pairs;
pub mod run;
