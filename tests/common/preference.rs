//! A stored preference made in a test (explicit, enabled, weight 1, nothing learned).

use padlock::memory::{Preference, Source};

pub fn stored(text: &str) -> Preference {
    Preference {
        id: "p".into(),
        text: text.into(),
        weight: 1.0,
        learned: 0.0,
        learned_since: 0,
        merged: Vec::new(),
        always: false,
        enabled: true,
        source: Source::Explicit,
        created: 0,
        updated: 0,
    }
}
