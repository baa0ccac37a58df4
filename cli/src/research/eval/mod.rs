//! Evaluation and training data for PAD (native only): the preference dimensions, text
//! measures, contrastive preference pairs and the evaluation runner behind `padlock eval`.

pub mod dimensions;
pub mod measures;
pub mod pairs;
pub mod run;
