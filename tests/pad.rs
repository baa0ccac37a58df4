//! PAD on the real default model: the properties DESIGN.md promises.

#[path = "common/model.rs"]
mod common;

use padlock::align::sampler::SamplingParams;
use padlock::align::{Method, Personalization, Preference};
use padlock::generate::{GenerateOptions, Generation};
use padlock::ErrorCode;

fn options(method: Method, prefs: &[(&str, f32)], beta: f32) -> GenerateOptions {
    GenerateOptions {
        max_tokens: 24,
        sampling: SamplingParams::greedy(),
        personalization: Personalization {
            method,
            preferences: prefs.iter().map(|&(t, w)| Preference { text: t.into(), weight: w }).collect(),
            beta,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn run(engine: &padlock::generate::Engine<padlock::backend::cpu::CpuBackend>, o: &GenerateOptions) -> (Vec<u32>, usize) {
    let before = engine.model.passes();
    let mut gen = pollster::block_on(Generation::chat(engine, "How do I boil an egg?", o)).unwrap();
    let mut explained = 0;
    while let Some(t) = pollster::block_on(gen.next()).unwrap() {
        if let Some(e) = &t.explanation {
            assert_eq!(e.chosen, t.id);
            explained += 1;
        }
    }
    let passes = engine.model.passes() - before;
    // One batched pass (all 1 + P contexts) for the prompts, then one per token fed back:
    // every generated token but the last unless the end-of-turn token needed one more step.
    let n = gen.generated().len();
    let fed = if gen.stop_reason() == Some(padlock::generate::StopReason::Eos) { n } else { n.saturating_sub(1) };
    assert_eq!(passes, 1 + fed, "passes per generation");
    if o.personalization.method == Method::Pad {
        assert_eq!(explained, n, "every PAD token is explained");
    }
    (gen.generated().to_vec(), passes)
}

#[test]
fn beta_zero_gives_exactly_the_base_tokens() {
    let engine = common::engine();
    let (base, _) = run(&engine, &options(Method::Base, &[], 1.0));
    let (pad0, _) = run(&engine, &options(Method::Pad, &[("Answer like a pirate.", 1.0), ("Be brief.", 2.0)], 0.0));
    assert_eq!(base, pad0);
}

#[test]
fn weights_and_beta_trade_off_exactly() {
    let engine = common::engine();
    let a = run(&engine, &options(Method::Pad, &[("Be brief.", 1.0), ("Be warm and friendly.", 0.5)], 1.0)).0;
    let b = run(&engine, &options(Method::Pad, &[("Be brief.", 2.0), ("Be warm and friendly.", 1.0)], 0.5)).0;
    assert_eq!(a, b);
}

#[test]
fn a_preference_changes_the_answer() {
    let engine = common::engine();
    let base = run(&engine, &options(Method::Base, &[], 1.0)).0;
    let pad = run(&engine, &options(Method::Pad, &[("Keep the answer very short and concise.", 1.0)], 1.5)).0;
    assert_ne!(base, pad);
}

#[test]
fn pad_without_preferences_is_a_typed_error() {
    let engine = common::engine();
    let err = pollster::block_on(Generation::chat(&engine, "Hi", &options(Method::Pad, &[], 1.0))).err().unwrap();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
}
