//! Relevance per request (`memory::relevance`) on tables of people's stored preferences
//! (`fixtures/relevance_profiles*.tsv`) and requests (`fixtures/relevance_cases*.tsv`), each
//! labelled with the preferences that should shape each answer by an author who never saw the
//! rules (the rules were then fitted to each table in turn; EVAL.md gives each table's first,
//! blind, measurement). Precision and recall of "this preference steers this request", per
//! request topic, over the preferences not marked `always` (those steer every request by
//! definition). And the selection itself: relevant ones only, `always` ones everywhere.
#![cfg(not(target_arch = "wasm32"))]

#[path = "common/preference.rs"]
mod preference;

use std::collections::BTreeMap;

use padlock::memory::relevance::{relevance, RELEVANT};
use padlock::memory::{select, Preference, HARMLESS_ID};
use padlock::tokenizer::ChatMessage;
use preference::stored;

fn user(text: &str) -> ChatMessage {
    ChatMessage { role: "user".into(), content: text.into() }
}

#[derive(Default)]
struct Counts {
    tp: usize,
    fp: usize,
    fn_: usize,
}

impl Counts {
    fn precision(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp).max(1) as f64
    }
    fn recall(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_).max(1) as f64
    }
    /// "precision (right/called)  recall (right/labelled)".
    fn row(&self) -> String {
        let (p, r) = (self.precision(), self.recall());
        format!("{p:.3} ({}/{})  {r:.3} ({}/{})", self.tp, self.tp + self.fp, self.tp, self.tp + self.fn_)
    }
}

/// (profile, id) → (always, text).
fn profiles_of(table: &str) -> BTreeMap<(String, String), (bool, String)> {
    table
        .lines()
        .skip(1)
        .map(|line| {
            let c: Vec<&str> = line.split('\t').collect();
            ((c[0].to_string(), c[1].to_string()), (c[2] == "yes", c[3].to_string()))
        })
        .collect()
}

/// Precision and recall per request topic and over all, printing every wrong call.
fn measure(profiles: &str, cases: &str) -> (BTreeMap<String, Counts>, Counts) {
    let profiles = profiles_of(profiles);
    let mut per_topic: BTreeMap<String, Counts> = BTreeMap::new();
    let mut all = Counts::default();
    let mut wrong = Vec::new();
    for line in cases.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        let (profile, topic, request, relevant) = (c[0], c[1], c[2], c[3]);
        let expected: Vec<&str> = relevant.split(',').filter(|s| *s != "-").collect();
        for ((p, id), (always, text)) in &profiles {
            if p != profile || *always {
                continue;
            }
            let got = relevance(text, &[user(request)]) >= RELEVANT;
            let want = expected.contains(&id.as_str());
            let counts = per_topic.entry(topic.to_string()).or_default();
            match (want, got) {
                (true, true) => (counts.tp += 1, all.tp += 1),
                (false, true) => {
                    wrong.push(format!("steered by {text:?}: {request:?}"));
                    (counts.fp += 1, all.fp += 1)
                }
                (true, false) => {
                    wrong.push(format!("missed {text:?}: {request:?}"));
                    (counts.fn_ += 1, all.fn_ += 1)
                }
                (false, false) => continue,
            };
        }
    }
    println!("{}", wrong.join("\n"));
    println!("topic      precision  recall");
    for (topic, c) in &per_topic {
        println!("{topic:10} {}", c.row());
    }
    println!("all        {}", all.row());
    (per_topic, all)
}

const TABLES: [(&str, &str, &str); 5] = [
    ("first", include_str!("fixtures/relevance_profiles.tsv"), include_str!("fixtures/relevance_cases.tsv")),
    ("second", include_str!("fixtures/relevance_profiles2.tsv"), include_str!("fixtures/relevance_cases2.tsv")),
    ("third", include_str!("fixtures/relevance_profiles3.tsv"), include_str!("fixtures/relevance_cases3.tsv")),
    ("fourth", include_str!("fixtures/relevance_profiles4.tsv"), include_str!("fixtures/relevance_cases4.tsv")),
    // Written after the rules stopped changing: its measurement is blind.
    ("fifth", include_str!("fixtures/relevance_profiles5.tsv"), include_str!("fixtures/relevance_cases5.tsv")),
];

/// Each table at 0.85 precision and recall or more, and every request topic over all five at 0.8
/// or more (the rules were fitted to the first four after measuring each blind, the fifth was
/// measured blind only: EVAL.md).
#[test]
fn relevance_on_the_tables_meets_the_precision_and_recall() {
    let floors = [(0.85, 0.85); 5];
    let mut pooled: BTreeMap<String, Counts> = BTreeMap::new();
    let mut failed = Vec::new();
    for ((name, profiles, cases), (min_p, min_r)) in TABLES.iter().zip(floors) {
        println!("--- {name} table");
        let (per_topic, all) = measure(profiles, cases);
        if all.precision() < min_p || all.recall() < min_r {
            failed.push(format!("{name}: precision {:.3}, recall {:.3}", all.precision(), all.recall()));
        }
        for (topic, c) in per_topic {
            let p = pooled.entry(topic).or_default();
            (p.tp, p.fp, p.fn_) = (p.tp + c.tp, p.fp + c.fp, p.fn_ + c.fn_);
        }
    }
    println!("--- all tables, per topic");
    for (topic, c) in &pooled {
        println!("{topic:10} {}", c.row());
        if c.precision() < 0.8 || c.recall() < 0.8 {
            failed.push(format!("topic {topic}: precision {:.3}, recall {:.3}", c.precision(), c.recall()));
        }
    }
    assert!(failed.is_empty(), "{failed:?}");
}

fn mine(id: &str, text: &str, weight: f64) -> Preference {
    Preference { id: id.into(), weight, created: id.len() as u64, ..stored(text) }
}

fn steering(preferences: &[Preference], max_active: usize, messages: &[ChatMessage]) -> Vec<String> {
    select(preferences, max_active, messages).steering.iter().map(|p| p.id.clone()).collect()
}

#[test]
fn the_five_preferences_of_the_issue_steer_only_where_they_apply() {
    let mut prefs = vec![
        Preference::harmless(0),
        mine("veg", "I am vegetarian.", 1.0),
        mine("py", "Explain code with Python examples.", 1.0),
        mine("short", "Be concise.", 1.0),
        mine("metric", "Use metric units.", 1.0),
        mine("german", "I am learning German; add the German word for key terms.", 1.0),
    ];
    let sort = [user("How do I sort a list of numbers?")];
    assert_eq!(steering(&prefs, 3, &sort), [HARMLESS_ID, "py", "short"]);
    let recipe = [user("Give me a recipe for a quick weeknight lasagna.")];
    assert_eq!(steering(&prefs, 3, &recipe), [HARMLESS_ID, "veg", "short", "metric"]);
    // The cap keeps the weightiest of the relevant ones.
    prefs[4].weight = 2.0;
    assert_eq!(steering(&prefs, 2, &recipe), [HARMLESS_ID, "metric", "veg"]);
    // Marked `always`, a preference steers every request; disabled, none.
    prefs[5].always = true;
    prefs[1].enabled = false;
    assert_eq!(steering(&prefs, 3, &sort), [HARMLESS_ID, "py", "short", "german"]);
    assert_eq!(steering(&prefs, 3, &recipe), [HARMLESS_ID, "metric", "short", "german"]);
    // Every stored preference is reported, with its relevance and whether it steered.
    let considered = select(&prefs, 3, &recipe).considered;
    let seen: Vec<(&str, f32, bool)> = considered.iter().map(|c| (c.id.as_str(), c.relevance, c.active)).collect();
    assert_eq!(
        seen,
        [
            (HARMLESS_ID, 1.0, true),
            ("veg", 1.0, false),
            ("py", 0.0, false),
            ("short", 1.0, true),
            ("metric", 1.0, true),
            ("german", 1.0, true)
        ]
    );
}

#[test]
fn a_follow_up_keeps_its_conversations_topic_at_half_relevance() {
    let conversation = [
        user("What can I cook for dinner tonight?"),
        ChatMessage { role: "assistant".into(), content: "How about a stir-fry with chicken?".into() },
        user("Sounds good, and what about something sweet for after?"),
    ];
    assert_eq!(relevance("I am vegetarian.", &conversation), 0.5);
    assert_eq!(relevance("I am vegetarian.", &conversation[2..]), 0.0);
    // What the assistant said is not the person's topic.
    let said = [conversation[1].clone(), user("Thanks!")];
    assert_eq!(relevance("I am vegetarian.", &said), 0.0);
    // A fact that names no topic applies where the request shares a word with it.
    assert_eq!(
        relevance("I play the cello in a community orchestra.", &[user("Which cello strings last longest?")]),
        1.0
    );
    assert_eq!(relevance("I collect vintage stamps.", &[user("Where can I sell a few old stamps?")]), 1.0);
    assert_eq!(relevance("I collect vintage stamps.", &[user("How do I fix a flat tyre?")]), 0.0);
}
