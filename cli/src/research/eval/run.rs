//! `padlock eval`: answers to a prompt set under one configuration (a method and its
//! knobs) for each dimension, with their measures, appended to a JSONL results file; and
//! the report that compares configurations against `base` per dimension.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::research::eval::dimensions::{dimension, Measure, DIMENSIONS};
use crate::research::eval::measures::Measures;
use padlock::align::Method;
use padlock::backend::Backend;
use padlock::error::Result;
use padlock::generate::{BestOfN, Engine, GenerateOptions, Generation};

/// One answer with its measures (a line of the results file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The configuration's name, e.g. "pad β=1".
    pub label: String,
    pub method: Method,
    /// The dimension whose preference steered the answer ("-" for base).
    pub dimension: String,
    /// The preference text that steered it (absent in rows made before it was recorded:
    /// then the dimension's wording of that time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preference: Option<String>,
    pub id: String,
    pub prompt: String,
    pub text: String,
    pub tokens: usize,
    pub measures: Measures,
}

/// A prompt of the evaluation set (`koala_eval_50.json`: `[{ "id", "prompt" }]`).
#[derive(Debug, Clone, Deserialize)]
pub struct Prompt {
    pub id: String,
    pub prompt: String,
}

/// The answer to `prompt` under `options` (best-of-n: the best sample).
pub async fn answer<B: Backend>(
    engine: &Engine<B>,
    prompt: &str,
    options: &GenerateOptions,
) -> Result<(String, usize)> {
    if options.personalization.method == Method::BestOfN {
        let mut bon = BestOfN::new(engine, prompt, options)?;
        bon.run().await?;
        let best = bon.best().map(|i| bon.samples()[i].clone());
        return Ok(best.map(|s| (s.text, s.generated_ids.len())).unwrap_or_default());
    }
    let mut gen = Generation::chat(engine, prompt, options).await?;
    while gen.next().await?.is_some() {}
    Ok((gen.text()?, gen.generated().len()))
}

/// Share of prompts where `label` moved the dimension's measure the preferred way compared
/// with base (ties do not count), and its mean measures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub label: String,
    pub dimension: String,
    pub n: usize,
    pub moved: usize,
    pub mean: Measures,
    /// mean relevance / base's mean relevance on the same prompts.
    pub relevance_vs_base: f64,
}

fn mean(rows: &[&Row]) -> Measures {
    let n = rows.len().max(1) as f64;
    let sum = |f: fn(&Measures) -> f64| rows.iter().map(|r| f(&r.measures)).sum::<f64>() / n;
    Measures {
        words: sum(|m| m.words),
        grade: sum(|m| m.grade),
        sentiment: sum(|m| m.sentiment),
        warmth: sum(|m| m.warmth),
        humour: sum(|m| m.humour),
        distinct2: sum(|m| m.distinct2),
        relevance: sum(|m| m.relevance),
    }
}

/// Whether `r` moved `measure` the preferred way compared with `b` (a tie is no move).
fn moved(r: &Row, b: &Row, measure: Measure) -> bool {
    r.measures.preferred(measure) > b.measures.preferred(measure)
}

/// Measures every row anew from its prompt and text, so that rows written before a measure
/// changed are judged by the same definitions as new ones.
pub fn remeasure(rows: &mut [Row]) {
    for r in rows {
        r.measures = Measures::of(&r.prompt, &r.text);
    }
}

/// Compares every (label, dimension) with the base rows on the same prompts.
pub fn summarize(rows: &[Row]) -> Result<Vec<Summary>> {
    let base: HashMap<&str, &Row> =
        rows.iter().filter(|r| r.method == Method::Base).map(|r| (r.id.as_str(), r)).collect();
    if base.is_empty() {
        padlock::bail!(InvalidArgument, "the results hold no base answers to compare with");
    }
    let mut groups: BTreeMap<(String, String), Vec<&Row>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.method != Method::Base) {
        groups.entry((r.dimension.clone(), r.label.clone())).or_default().push(r);
    }
    let mut out = Vec::new();
    // The base row of each dimension first, for the absolute values.
    for d in DIMENSIONS {
        let b: Vec<&Row> = base.values().copied().collect();
        out.push(Summary {
            label: "base".into(),
            dimension: d.name.into(),
            n: b.len(),
            moved: 0,
            mean: mean(&b),
            relevance_vs_base: 1.0,
        });
    }
    for ((dim, label), group) in groups {
        let d = dimension(&dim)?;
        let paired: Vec<(&Row, &Row)> =
            group.iter().filter_map(|r| base.get(r.id.as_str()).map(|b| (*r, *b))).collect();
        let moved = paired.iter().filter(|(r, b)| moved(r, b, d.measure)).count();
        let mine: Vec<&Row> = paired.iter().map(|p| p.0).collect();
        let theirs: Vec<&Row> = paired.iter().map(|p| p.1).collect();
        let (m, bm) = (mean(&mine), mean(&theirs));
        out.push(Summary {
            label,
            dimension: dim,
            n: paired.len(),
            moved,
            mean: m,
            relevance_vs_base: if bm.relevance > 0.0 { m.relevance / bm.relevance } else { 1.0 },
        });
    }
    Ok(out)
}

/// The report as Markdown: one table per dimension.
pub fn report(rows: &[Row]) -> Result<String> {
    let summaries = summarize(rows)?;
    let mut md = String::new();
    for d in DIMENSIONS {
        let of_dim: Vec<&Summary> = summaries.iter().filter(|s| s.dimension == d.name).collect();
        if of_dim.len() <= 1 {
            continue;
        }
        md += &format!("\n### {} — \"{}\" (measure: {:?})\n\n", d.name, d.prefer, d.measure);
        md += "| method | n | moved the preferred way vs base | words | FK grade | sentiment | warmth | humour /100w | distinct-2 | relevance | relevance vs base |\n";
        md += "|---|---|---|---|---|---|---|---|---|---|---|\n";
        for s in of_dim {
            let moved = if s.label == "base" { "—".to_string() } else { share(s.moved, s.n) };
            let m = &s.mean;
            md += &format!(
                "| {} | {} | {} | {:.1} | {:.1} | {:+.3} | {:+.3} | {:.2} | {:.3} | {:.3} | {:.2} |\n",
                s.label,
                s.n,
                moved,
                m.words,
                m.grade,
                m.sentiment,
                m.warmth,
                m.humour,
                m.distinct2,
                m.relevance,
                s.relevance_vs_base
            );
        }
    }
    md += &side_by_side(rows, 2);
    Ok(md)
}

/// "k/n (p%)".
fn share(k: usize, n: usize) -> String {
    format!("{k}/{n} ({:.0}%)", 100.0 * k as f64 / n.max(1) as f64)
}

/// For each dimension, the answers of every configuration to its first `per_dimension`
/// prompts that every configuration answered (each cut to 320 characters).
fn side_by_side(rows: &[Row], per_dimension: usize) -> String {
    let cell = |t: &str| {
        let mut c: String = t.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|");
        if c.chars().count() > 320 {
            c = c.chars().take(320).collect::<String>() + "…";
        }
        c
    };
    let mut md = String::from("\n## Answers side by side\n");
    for d in DIMENSIONS {
        let labels: Vec<&str> = {
            let mut l: Vec<&str> = rows.iter().filter(|r| r.dimension == d.name).map(|r| r.label.as_str()).collect();
            l.sort();
            l.dedup();
            l
        };
        if labels.is_empty() {
            continue;
        }
        let find =
            |label: &str, id: &str| rows.iter().find(|r| r.label == label && r.dimension == d.name && r.id == id);
        let base = |id: &str| rows.iter().find(|r| r.method == Method::Base && r.id == id);
        let mut shown = 0;
        for r in rows.iter().filter(|r| r.method == Method::Base) {
            if shown == per_dimension {
                break;
            }
            if labels.iter().all(|l| find(l, &r.id).is_some()) {
                md += &format!(
                    "\n**{}** — prompt {}: \"{}\"\n\n| method | answer |\n|---|---|\n",
                    d.name,
                    r.id,
                    cell(&r.prompt)
                );
                if let Some(b) = base(&r.id) {
                    md += &format!("| base | {} |\n", cell(&b.text));
                }
                for l in &labels {
                    if let Some(a) = find(l, &r.id) {
                        md += &format!("| {} | {} |\n", l, cell(&a.text));
                    }
                }
                shown += 1;
            }
        }
    }
    md
}
