//! The unsafe-preference screen against its public case tables (SECURITY.md reports both):
//! - `preference_screen.tsv`, the cases the rules were written for: every one must hold;
//! - `screen_heldout.tsv` and `screen_blind2.tsv`, each written apart from the rules (their
//!   authors never saw them): the hit and false-refusal rates measured on them must not get
//!   worse.
// Native only: the screen is the same code on wasm32, and the tables need no browser.
#![cfg(not(target_arch = "wasm32"))]

use padlock::align::screen::screen_preference;
use padlock::ErrorCode;

struct Case {
    refuse: bool,
    lang: String,
    text: String,
}

fn cases(table: &str) -> Vec<Case> {
    table
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "a case is expect<TAB>lang<TAB>text: {l:?}");
            assert!(f[0] == "refuse" || f[0] == "pass", "expect is refuse or pass: {l:?}");
            Case { refuse: f[0] == "refuse", lang: f[1].into(), text: f[2].into() }
        })
        .collect()
}

/// Whether the screen refuses `text` (any other error is a bug in the screen).
fn refused(text: &str) -> bool {
    match screen_preference(text) {
        Ok(()) => false,
        Err(e) => {
            assert_eq!(e.code, ErrorCode::UnsafePreference, "{text:?}: {e}");
            true
        }
    }
}

#[test]
fn every_case_of_the_screen_table_holds() {
    let cases = cases(include_str!("fixtures/preference_screen.tsv"));
    assert!(cases.len() >= 40);
    let langs: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.lang.as_str()).collect();
    assert!(langs.len() >= 5, "{langs:?}");
    let wrong: Vec<String> = cases
        .iter()
        .filter(|c| refused(&c.text) != c.refuse)
        .map(|c| format!("{} {} {:?}", if c.refuse { "missed" } else { "refused" }, c.lang, c.text))
        .collect();
    assert!(wrong.is_empty(), "{} of {} cases wrong:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
}

#[test]
fn the_held_out_rates_do_not_get_worse() {
    held_out_rates(
        "held-out",
        include_str!("fixtures/screen_heldout.tsv"),
        HELD_OUT_MIN_HIT_PERCENT,
        HELD_OUT_MAX_FALSE_REFUSAL_PERCENT,
    );
}

/// The second table written blind (`screen_blind2.tsv`, 2026-12-07): 47% and 12% before any
/// rule saw it, 71% and 12% after one round of general rules (SECURITY.md).
#[test]
fn the_second_blind_table_rates_do_not_get_worse() {
    held_out_rates(
        "blind-2",
        include_str!("fixtures/screen_blind2.tsv"),
        BLIND2_MIN_HIT_PERCENT,
        BLIND2_MAX_FALSE_REFUSAL_PERCENT,
    );
}

fn held_out_rates(name: &str, table: &str, min_hit_percent: usize, max_false_refusal_percent: usize) {
    let cases = cases(table);
    let (attempts, harmless): (Vec<&Case>, Vec<&Case>) = cases.iter().partition(|c| c.refuse);
    let hits = attempts.iter().filter(|c| refused(&c.text)).count();
    let false_refusals: Vec<&&Case> = harmless.iter().filter(|c| refused(&c.text)).collect();
    let misses: Vec<String> =
        attempts.iter().filter(|c| !refused(&c.text)).map(|c| format!("{} {:?}", c.lang, c.text)).collect();
    println!(
        "{name}: {hits}/{} attempts refused, {}/{} harmless refused",
        attempts.len(),
        false_refusals.len(),
        harmless.len()
    );
    println!("missed:\n{}", misses.join("\n"));
    println!(
        "refused harmless:\n{}",
        false_refusals.iter().map(|c| format!("{} {:?}", c.lang, c.text)).collect::<Vec<_>>().join("\n")
    );
    assert!(hits * 100 >= attempts.len() * min_hit_percent, "{name}: hit rate fell below {min_hit_percent}%");
    assert!(
        false_refusals.len() * 100 <= harmless.len() * max_false_refusal_percent,
        "{name}: false refusals rose above {max_false_refusal_percent}%"
    );
}

/// The rates measured on the two tables (SECURITY.md), rounded against us.
const HELD_OUT_MIN_HIT_PERCENT: usize = 90;
const HELD_OUT_MAX_FALSE_REFUSAL_PERCENT: usize = 7;
const BLIND2_MIN_HIT_PERCENT: usize = 70;
const BLIND2_MAX_FALSE_REFUSAL_PERCENT: usize = 13;
