//! Duplicates and conflicts: whether a new preference says the same as a stored one ("Keep
//! answers short." beside "Be concise.") or the opposite ("Give long answers." beside "Be
//! concise."), so the person can merge them or choose.
//!
//! Each text is read as stances on a few dimensions answers vary along (length, technical level,
//! formality, humour, emoji, lists, units, temperature, clock, spelling, examples, warmth, diet,
//! answer language, code language), from cue words; a negation shortly before a cue ("don't
//! ramble", "no emoji", "avoid jargon") turns it to the other side. Two texts with the same
//! stances say the same; a dimension on which they take different sides is a conflict.
//! `tests/relate.rs` measures this on a table written apart from it.

use serde::Serialize;

use super::cues::{matches_at, words};
use super::Preference;

/// How a stored preference relates to a new text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub enum Relation {
    /// Says the same: merging them is proposed.
    Same,
    /// Asks for the opposite on some dimension: the person chooses.
    Opposite,
}

/// A stored preference related to a new text.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct Related {
    pub id: String,
    pub text: String,
    pub relation: Relation,
    /// What they agree or disagree on ("length", "units", ...).
    pub dimension: String,
}

/// A dimension with two sides, each a list of cues (a trailing `*` matches any ending; cues of
/// several words match as a phrase).
struct Axis {
    name: &'static str,
    sides: [(&'static str, &'static [&'static str]); 2],
}

const AXES: &[Axis] = &[
    Axis {
        name: "length",
        sides: [
            (
                "short",
                &[
                    "short*",
                    "brief*",
                    "concise*",
                    "succinct*",
                    "terse",
                    "to the point",
                    "one sentence",
                    "one-liner*",
                    "few words",
                    "tl;dr",
                    "tldr",
                    "compact",
                    "minimal",
                    "summar*",
                    "quick answer*",
                ],
            ),
            (
                "long",
                &[
                    "long*",
                    "lengthy",
                    "detailed",
                    "detail",
                    "details",
                    "thorough*",
                    "in-depth",
                    "in depth",
                    "comprehensive*",
                    "elaborat*",
                    "expansive",
                    "verbose",
                    "ramble",
                    "rambling",
                    "wordy",
                    "extensive*",
                    "exhaustive*",
                    "at length",
                    "full explanation*",
                    "deep dive*",
                    "go deep",
                ],
            ),
        ],
    },
    Axis {
        name: "technical level",
        sides: [
            (
                "technical",
                &[
                    "technical",
                    "jargon",
                    "precise term*",
                    "technical term*",
                    "expert-level",
                    "expert level",
                    "advanced",
                    "formal notation",
                    "equations",
                    "math notation",
                ],
            ),
            (
                "plain",
                &[
                    "simple",
                    "simply",
                    "plain",
                    "layman*",
                    "beginner*",
                    "eli5",
                    "like i'm five",
                    "like i am five",
                    "non-technical",
                    "nontechnical",
                    "everyday words",
                    "easy to understand",
                    "basic terms",
                ],
            ),
        ],
    },
    Axis {
        name: "formality",
        sides: [
            ("formal", &["formal", "formally", "professional*", "business-like", "businesslike", "polite"]),
            (
                "casual",
                &["casual*", "informal*", "relaxed", "chatty", "slang", "conversational", "laid-back", "laid back"],
            ),
        ],
    },
    Axis {
        name: "humour",
        sides: [
            ("funny", &["humor*", "humour*", "joke*", "funny", "witty", "wit", "playful", "pun", "puns", "jokey"]),
            ("serious", &["serious*", "straight-faced", "deadpan", "solemn", "strictly factual"]),
        ],
    },
    Axis { name: "emoji", sides: [("emoji", &["emoji*", "emoticon*", "smiley*"]), ("no emoji", &["plain text only"])] },
    Axis {
        name: "format",
        sides: [
            ("lists", &["bullet*", "list", "lists", "numbered", "point form", "step-by-step list*"]),
            ("prose", &["prose", "paragraph*", "full sentences", "flowing text", "narrative"]),
        ],
    },
    Axis {
        name: "units",
        sides: [
            (
                "metric",
                &[
                    "metric",
                    "kilomet*",
                    "kilogram*",
                    "kg",
                    "km",
                    "meter*",
                    "metre*",
                    "centimet*",
                    "litre*",
                    "liter*",
                    "grams",
                ],
            ),
            (
                "imperial",
                &[
                    "imperial",
                    "mile*",
                    "pound*",
                    "lbs",
                    "feet",
                    "foot",
                    "inch*",
                    "ounce*",
                    "gallon*",
                    "us customary",
                    "yards",
                ],
            ),
        ],
    },
    Axis {
        name: "temperature",
        sides: [("celsius", &["celsius", "°c", "centigrade"]), ("fahrenheit", &["fahrenheit", "°f"])],
    },
    Axis {
        name: "clock",
        sides: [
            ("24-hour", &["24-hour", "24 hour", "24h", "24-hr", "military time"]),
            ("12-hour", &["12-hour", "12 hour", "12h", "am/pm", "am and pm", "a.m."]),
        ],
    },
    Axis {
        name: "spelling",
        sides: [
            ("british", &["british", "uk english", "uk spelling", "colour", "favour", "en-gb", "commonwealth"]),
            ("american", &["american", "us english", "us spelling", "color", "favor", "en-us"]),
        ],
    },
    Axis {
        name: "examples",
        sides: [("examples", &["example*", "worked example*", "illustrat*"]), ("no examples", &["abstract only"])],
    },
    Axis {
        name: "warmth",
        sides: [
            (
                "warm",
                &[
                    "warm*",
                    "kind",
                    "kindly",
                    "gentle*",
                    "encourag*",
                    "empath*",
                    "supportive",
                    "sugar-coat*",
                    "sugarcoat*",
                    "soften*",
                    "tactful*",
                    "diplomatic*",
                ],
            ),
            (
                "blunt",
                &[
                    "blunt*",
                    "harsh*",
                    "brutal*",
                    "direct",
                    "directly",
                    "frank*",
                    "no-nonsense",
                    "tough love",
                    "straight talk",
                ],
            ),
        ],
    },
    Axis {
        name: "diet",
        sides: [
            (
                "vegetarian",
                &["vegetarian*", "vegan*", "plant-based", "plant based", "meatless", "meat-free", "pescatarian"],
            ),
            ("meat", &["meat", "meats", "steak*", "beef", "pork", "bacon", "chicken", "carnivore*", "burger*"]),
        ],
    },
];

/// Dimensions whose value is a name rather than a side.
const LANGUAGES: &[&str] = &[
    "english",
    "spanish",
    "french",
    "german",
    "italian",
    "portuguese",
    "dutch",
    "polish",
    "russian",
    "japanese",
    "chinese",
    "korean",
    "arabic",
    "hindi",
    "turkish",
    "swedish",
];
const CODE_LANGUAGES: &[&str] = &[
    "python",
    "javascript",
    "typescript",
    "rust",
    "java",
    "c++",
    "c#",
    "go",
    "golang",
    "ruby",
    "kotlin",
    "swift",
    "php",
];
/// Words that turn the next few words to the other side.
const NEGATIONS: &[&str] = &[
    "not",
    "don't",
    "dont",
    "do not",
    "never",
    "no",
    "avoid",
    "without",
    "stop",
    "less",
    "skip",
    "ditch",
    "drop",
    "cut",
    "nothing",
    "instead of",
    "rather than",
    "fewer",
    "neither",
    "nor",
    "hate",
    "dislike",
    "can't stand",
    "cannot stand",
    "enough with",
];
const NEGATION_REACH: usize = 3;

/// The stored preferences (the harmlessness principle aside) that `text` says the same as or
/// the opposite of.
pub fn related(text: &str, stored: &[Preference]) -> Vec<Related> {
    let new = stances(text);
    if new.is_empty() {
        return Vec::new();
    }
    stored
        .iter()
        .filter(|p| !p.is_universal())
        .filter_map(|p| {
            let old = stances(&p.text);
            let clash = new.iter().find(|(d, v)| old.iter().any(|(od, ov)| od == d && ov != v));
            let (relation, dimension) = match clash {
                Some((d, _)) => (Relation::Opposite, d.clone()),
                None if same_set(&new, &old) => (Relation::Same, new[0].0.clone()),
                None => return None,
            };
            Some(Related { id: p.id.clone(), text: p.text.clone(), relation, dimension })
        })
        .collect()
}

fn same_set(a: &[(String, String)], b: &[(String, String)]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

/// The (dimension, side) pairs a text takes, once each; a dimension taken both ways is left out.
pub(super) fn stances(text: &str) -> Vec<(String, String)> {
    let words = words(text);
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |dim: &str, side: &str| {
        let s = (dim.to_string(), side.to_string());
        if !out.contains(&s) {
            out.push(s);
        }
    };
    for i in 0..words.len() {
        let negated = negated(&words, i);
        for axis in AXES {
            for (k, (side, cues)) in axis.sides.iter().enumerate() {
                if cues.iter().any(|c| matches_at(&words, i, c)) {
                    add(axis.name, if negated { axis.sides[1 - k].0 } else { side });
                }
            }
        }
        for (dim, names) in [("answer language", LANGUAGES), ("code language", CODE_LANGUAGES)] {
            if !negated && names.contains(&words[i].as_str()) {
                add(dim, &words[i]);
            }
        }
    }
    let both: Vec<String> =
        out.iter().filter(|(d, v)| out.iter().any(|(d2, v2)| d2 == d && v2 != v)).map(|(d, _)| d.clone()).collect();
    out.retain(|(d, _)| !both.contains(d));
    out
}

fn negated(words: &[String], i: usize) -> bool {
    let from = i.saturating_sub(NEGATION_REACH);
    NEGATIONS.iter().any(|n| (from..i).any(|j| matches_at(words, j, n)))
}
