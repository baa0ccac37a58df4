//! Reading a short text as cue words: what `relate` and `relevance` match their word lists
//! against (lower case, apostrophes straightened, `*` in a cue for any ending).

/// Whether the cue `cue` (one or more words, `*` for any ending) starts at word `i`.
pub(super) fn matches_at(words: &[String], i: usize, cue: &str) -> bool {
    cue.split(' ').enumerate().all(|(k, part)| {
        words.get(i + k).is_some_and(|w| match part.strip_suffix('*') {
            Some(stem) => w.starts_with(stem),
            None => w == part,
        })
    })
}

pub(super) fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace(['’', '‘'], "'")
        .split(|c: char| !(c.is_alphanumeric() || "'-+#/;°.".contains(c)))
        .map(|w| w.trim_matches(['.', '\'', '-', '/', ';']).to_string())
        .filter(|w| !w.is_empty())
        .collect()
}
