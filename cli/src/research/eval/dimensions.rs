//! The preference dimensions padlock trains value heads for and evaluates PAD on. Each has
//! a preferred pole (the preference a person would state), its opposite (used to make
//! contrastive training pairs), and the automatic measure that tells whether an answer
//! moved towards the preferred pole.

use serde::Serialize;

/// Which automatic measure judges a dimension, and which way is "preferred".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Measure {
    /// Length in words; fewer is preferred.
    FewerWords,
    /// Flesch–Kincaid grade; lower (simpler) is preferred.
    LowerGrade,
    /// VADER compound sentiment, the mean over the answer's sentences (see `measures`); higher
    /// (warmer) is preferred.
    HigherSentiment,
    /// Humour markers per 100 words; more is preferred.
    MoreHumour,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Dimension {
    /// Short name used on the command line and in file names: "concise", "child", ...
    pub name: &'static str,
    /// The preference a person states (the preferred pole).
    pub prefer: &'static str,
    /// Its opposite (the rejected pole when making training pairs).
    pub opposite: &'static str,
    pub measure: Measure,
}

pub const DIMENSIONS: &[Dimension] = &[
    Dimension {
        name: "concise",
        prefer: "Be concise: answer in one or two short sentences.",
        opposite: "Be detailed: give a long, thorough answer with many details and examples.",
        measure: Measure::FewerWords,
    },
    Dimension {
        name: "child",
        prefer: "Explain it simply, as to a five-year-old child, with short everyday words.",
        opposite: "Answer as an expert for specialists, with precise technical vocabulary.",
        measure: Measure::LowerGrade,
    },
    Dimension {
        name: "warm",
        prefer: "Use a warm, kind, encouraging tone with friendly words.",
        opposite: "Use a cold, formal, impersonal tone.",
        measure: Measure::HigherSentiment,
    },
    Dimension {
        name: "humor",
        prefer: "Add a light joke or a pun.",
        opposite: "Be plain and serious, with no jokes.",
        measure: Measure::MoreHumour,
    },
];

/// The dimension called `name`.
pub fn dimension(name: &str) -> padlock::Result<&'static Dimension> {
    DIMENSIONS.iter().find(|d| d.name == name).ok_or_else(|| {
        let names: Vec<&str> = DIMENSIONS.iter().map(|d| d.name).collect();
        padlock::Error::new(
            padlock::ErrorCode::InvalidArgument,
            format!("unknown dimension {name:?} (known: {})", names.join(", ")),
        )
    })
}
