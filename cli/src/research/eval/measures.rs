//! Transparent automatic measures of an answer, for `padlock eval`:
//! - length in words (whitespace-separated);
//! - Flesch–Kincaid grade (the `textstat` crate: 0.39·words/sentences + 11.8·syllables/words − 15.59);
//! - VADER compound sentiment in [−1, 1] (the `vader_sentiment` crate, a port of the
//!   published VADER lexicon and rules; lexicon and code under the MIT license), of the whole
//!   answer, and its mean over the answer's sentences ("warmth", what the warm dimension is
//!   judged by): the compound score normalises a sum of valences, sum / √(sum² + 15), so over
//!   a 100-word answer it saturates near ±1 (20 of the 50 base answers of the evaluation
//!   score ≥ 0.9) and can hardly rise; VADER's authors score longer texts sentence by sentence;
//! - humour markers per 100 words: words of laughter and joking and laughing/winking
//!   emoji from the short list below (a transparent list of this project's, not a
//!   published lexicon: none with a usable license was at hand);
//! - distinct-2: distinct word bigrams / all word bigrams (diversity);
//! - relevance: the share of the question's content words (not stop words, ≥ 3 letters)
//!   the answer uses, matched on their first five letters (a crude stem).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::dimensions::Measure;

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Measures {
    pub words: f64,
    pub grade: f64,
    pub sentiment: f64,
    /// Mean VADER compound of the sentences (0 for an empty answer).
    #[serde(default)]
    pub warmth: f64,
    pub humour: f64,
    pub distinct2: f64,
    pub relevance: f64,
}

impl Measures {
    pub fn of(question: &str, answer: &str) -> Measures {
        let words = answer.split_whitespace().count() as f64;
        Measures {
            words,
            grade: if words == 0.0 { 0.0 } else { textstat::flesch_kincaid_grade(answer) },
            sentiment: sentiment(answer),
            warmth: mean_sentence_sentiment(answer),
            humour: humour_per_100_words(answer),
            distinct2: distinct2(answer),
            relevance: relevance(question, answer),
        }
    }

    /// The value a dimension is judged by, signed so that larger is always preferred.
    pub fn preferred(&self, m: Measure) -> f64 {
        match m {
            Measure::FewerWords => -self.words,
            Measure::LowerGrade => -self.grade,
            Measure::HigherSentiment => self.warmth,
            Measure::MoreHumour => self.humour,
        }
    }

    /// The raw value of a dimension's measure.
    pub fn value(&self, m: Measure) -> f64 {
        match m {
            Measure::FewerWords => self.words,
            Measure::LowerGrade => self.grade,
            Measure::HigherSentiment => self.warmth,
            Measure::MoreHumour => self.humour,
        }
    }
}

pub fn sentiment(text: &str) -> f64 {
    thread_local! {
        static VADER: vader_sentiment::SentimentIntensityAnalyzer<'static> = vader_sentiment::SentimentIntensityAnalyzer::new();
    }
    VADER.with(|v| v.polarity_scores(text).get("compound").copied().unwrap_or(0.0))
}

/// The sentences of a text: split after '.', '!' or '?' followed by white space, and at line
/// breaks; pieces without a letter or digit (list markers, stray punctuation) are dropped.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is_space = chars.peek().is_none_or(|&(_, n)| n.is_whitespace());
        if c == '\n' || (matches!(c, '.' | '!' | '?') && next_is_space) {
            let end = i + c.len_utf8();
            out.push(text[start..end].trim());
            start = end;
        }
    }
    out.push(text[start..].trim());
    out.retain(|s| s.chars().any(char::is_alphanumeric));
    out
}

/// Mean VADER compound over the sentences of `text` (0 if it has none).
pub fn mean_sentence_sentiment(text: &str) -> f64 {
    let s = sentences(text);
    if s.is_empty() {
        return 0.0;
    }
    s.iter().map(|s| sentiment(s)).sum::<f64>() / s.len() as f64
}

fn lower_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

const HUMOUR_WORDS: &[&str] = &[
    "joke",
    "jokes",
    "joking",
    "jokingly",
    "funny",
    "funniest",
    "laugh",
    "laughs",
    "laughing",
    "laughter",
    "haha",
    "hahaha",
    "hehe",
    "lol",
    "pun",
    "puns",
    "pun-intended",
    "hilarious",
    "silly",
    "giggle",
    "giggles",
    "humor",
    "humour",
    "humorous",
    "witty",
    "kidding",
    "punchline",
    "chuckle",
    "chuckles",
    "goofy",
    "wacky",
];
const HUMOUR_EMOJI: &[char] = &['😄', '😂', '🤣', '😅', '😆', '😜', '😉', '🙃', '😛', '😝', '🤪', '😁'];

pub fn humour_per_100_words(text: &str) -> f64 {
    let n = text.split_whitespace().count();
    if n == 0 {
        return 0.0;
    }
    let words = lower_words(text).iter().filter(|w| HUMOUR_WORDS.contains(&w.as_str())).count();
    let emoji = text.chars().filter(|c| HUMOUR_EMOJI.contains(c)).count();
    100.0 * (words + emoji) as f64 / n as f64
}

pub fn distinct2(text: &str) -> f64 {
    let w = lower_words(text);
    if w.len() < 2 {
        return 0.0;
    }
    let bigrams: Vec<(&str, &str)> = w.windows(2).map(|p| (p[0].as_str(), p[1].as_str())).collect();
    let distinct: HashSet<_> = bigrams.iter().collect();
    distinct.len() as f64 / bigrams.len() as f64
}

const STOP_WORDS: &[&str] = &[
    "the",
    "and",
    "for",
    "are",
    "but",
    "not",
    "you",
    "your",
    "all",
    "any",
    "can",
    "her",
    "was",
    "one",
    "our",
    "out",
    "has",
    "have",
    "had",
    "him",
    "his",
    "how",
    "its",
    "may",
    "new",
    "now",
    "old",
    "see",
    "two",
    "who",
    "did",
    "get",
    "let",
    "say",
    "she",
    "too",
    "use",
    "that",
    "this",
    "with",
    "from",
    "they",
    "them",
    "then",
    "than",
    "there",
    "their",
    "what",
    "when",
    "where",
    "which",
    "while",
    "will",
    "would",
    "could",
    "should",
    "about",
    "into",
    "some",
    "such",
    "these",
    "those",
    "been",
    "being",
    "were",
    "does",
    "doing",
    "just",
    "only",
    "also",
    "very",
    "more",
    "most",
    "much",
    "many",
    "other",
    "over",
    "under",
    "each",
    "why",
    "give",
    "tell",
    "explain",
    "me",
    "my",
    "is",
    "it",
    "of",
    "to",
    "in",
    "on",
    "a",
    "an",
    "be",
    "do",
    "if",
    "or",
    "as",
    "at",
    "by",
    "we",
    "i",
    "so",
    "up",
    "no",
    "yes",
    "please",
    "know",
    "want",
    "need",
    "like",
    "make",
    "some",
    "something",
    "things",
    "thing",
    "way",
    "ways",
    "i'm",
    "i’m",
    "don't",
    "it's",
];

/// The question's content words (lower case, ≥ 3 letters, not stop words), deduplicated.
pub fn content_words(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    lower_words(text)
        .into_iter()
        .filter(|w| w.chars().count() >= 3 && !STOP_WORDS.contains(&w.as_str()))
        .filter(|w| seen.insert(w.clone()))
        .collect()
}

fn stem(w: &str) -> String {
    w.chars().take(5).collect()
}

pub fn relevance(question: &str, answer: &str) -> f64 {
    let q = content_words(question);
    if q.is_empty() {
        return 1.0;
    }
    let a: HashSet<String> = lower_words(answer).iter().map(|w| stem(w)).collect();
    q.iter().filter(|w| a.contains(&stem(w))).count() as f64 / q.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_of_known_texts() {
        let m = Measures::of("How do volcanoes erupt?", "Volcanoes erupt when magma rises. It is hot!");
        assert_eq!(m.words, 8.0);
        assert_eq!(m.relevance, 1.0, "both content words (volcanoes, erupt) are used");
        assert!(sentiment("I love this, it is wonderful and kind.") > 0.5);
        assert!(sentiment("This is terrible, awful and sad.") < -0.5);
        assert_eq!(sentiment("The table has four legs."), 0.0);
        // Flesch–Kincaid: short words and sentences grade far below long ones.
        let easy = textstat::flesch_kincaid_grade("The cat sat. The dog ran. We had fun.");
        let hard = textstat::flesch_kincaid_grade(
            "Photosynthetic organisms convert electromagnetic radiation into chemical energy through complicated biochemical pathways.",
        );
        assert!(easy < 2.0 && hard > 15.0, "{easy} {hard}");
        assert_eq!(
            sentences("It works. Really?\n- Yes!\n\n3.5 is a number. e.g.x"),
            vec!["It works.", "Really?", "- Yes!", "3.5 is a number.", "e.g.x"]
        );
        // A long warm text saturates the whole-text compound; the sentence mean still tells
        // a warmer answer from a plain one.
        let plain = "The kettle heats water. You pour it over the grounds. ".repeat(4)
            + "It is great and wonderful and lovely.";
        let warm = "The kettle heats water. You pour it over the grounds, and that is great. ".repeat(4)
            + "It is great and wonderful and lovely.";
        assert!(mean_sentence_sentiment(&warm) > mean_sentence_sentiment(&plain) + 0.1);
        assert!((sentiment(&warm) - sentiment(&plain)).abs() < 0.1, "the whole-text compound barely moves");
        assert_eq!(mean_sentence_sentiment("..."), 0.0);
        assert_eq!(humour_per_100_words("Ha, what a funny joke 😂 to tell"), 100.0 * 3.0 / 8.0);
        assert_eq!(distinct2("a b a b"), 2.0 / 3.0);
        assert_eq!(content_words("What is the capital of Germany?"), vec!["capital", "germany"]);
        assert_eq!(relevance("What is the capital of Germany?", "Berlin is Germany's capital."), 1.0);
        assert_eq!(relevance("What is the capital of Germany?", "Paris."), 0.0);
        assert_eq!(Measures::of("q", "").words, 0.0);
    }
}
