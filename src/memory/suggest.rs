//! Suggestions from the conversation: the person's own first-person statements that should
//! shape later answers ("I'm vegetarian", "please always answer in metric", "I don't like long
//! answers"), each with the sentence it came from. Nothing is stored: the person confirms a
//! suggestion (then it is added like any preference) or dismisses it.
//!
//! A small set of sentence rules, not a model: a sentence is suggested when it is a standing
//! instruction ("always …", "from now on …", "keep your answers …"), a first-person liking or
//! disliking, or a lasting fact about the person that shapes answers (diet, allergies, what
//! they are learning, their level or trade); questions, one-off requests about this answer,
//! temporary states, hypotheticals, the past and other people's preferences are not.
//! `tests/suggest.rs` measures the rules on a table written apart from them.

use serde::Serialize;

use super::Preference;
use crate::align::screen::screen_preference;
use crate::memory::MAX_PREFERENCE_CHARS;
use crate::tokenizer::ChatMessage;

/// A preference the conversation suggests.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct Suggestion {
    /// The preference to remember, if the person confirms it.
    pub text: String,
    /// The sentence it came from, as written.
    pub sentence: String,
    /// The index of its message in the messages given.
    pub message: usize,
}

/// Openings that say nothing ("OK,", "by the way,") and are dropped before the rules read.
const FILLERS: &[&str] = &[
    "ok",
    "okay",
    "oh",
    "well",
    "also",
    "and",
    "but",
    "so",
    "hi",
    "hey",
    "hello",
    "btw",
    "by the way",
    "fyi",
    "just so you know",
    "for the record",
    "for your information",
    "note that",
    "please note",
    "remember",
    "remember that",
    "one more thing",
    "actually",
    "honestly",
    "just",
];

/// Openings of a standing instruction; the first group is dropped from the suggested text.
const STANDING_DROPPED: &[&str] = &[
    "from now on",
    "in the future",
    "in future",
    "going forward",
    "for future answers",
    "for all future answers",
    "please",
    "desde ahora",
    "a partir de ahora",
    "de ahora en adelante",
    "por favor",
    "désormais",
    "dorénavant",
    "à partir de maintenant",
    "s'il te plaît",
    "s'il vous plaît",
    "ab jetzt",
    "von nun an",
    "in zukunft",
    "bitte",
];
const STANDING: &[&str] = &[
    "always ",
    "never ",
    "don't ever ",
    "do not ever ",
    "whenever ",
    "every time ",
    "each time ",
    "keep your ",
    "keep answers ",
    "keep the answers ",
    "keep responses ",
    "keep replies ",
    "keep explanations ",
    "keep it ",
    "use metric",
    "use imperial",
    "use celsius",
    "use fahrenheit",
    "use british",
    "use american",
    "use the metric",
    "use simple",
    "use plain",
    "use bullet",
    "use short",
    "answer in ",
    "reply in ",
    "respond in ",
    "write in ",
    "talk to me in ",
    "speak to me in ",
    "explain things ",
    "call me ",
    "address me as ",
    "no emoji",
    "avoid ",
    "stop using ",
    "skip the ",
    "don't use ",
    "do not use ",
    "don't add ",
    "do not add ",
    "don't include ",
    "do not include ",
    "siempre ",
    "nunca ",
    "toujours ",
    "ne jamais ",
    "immer ",
    "niemals ",
    "nie ",
    "responde en ",
    "réponds en ",
    "antworte auf ",
    "antworte immer ",
    "usa el sistema",
    "utilise le système",
];

/// First-person openings of a liking or a lasting fact.
const FIRST_PERSON: &[&str] = &[
    "i prefer ",
    "i'd prefer ",
    "i would prefer ",
    "i'd rather ",
    "i would rather ",
    "i like ",
    "i love ",
    "i really like ",
    "i really love ",
    "i enjoy ",
    "i don't like ",
    "i do not like ",
    "i really don't like ",
    "i dislike ",
    "i hate ",
    "i can't stand ",
    "i cannot stand ",
    "i want you to always ",
    "i want you to never ",
    "i want short",
    "i want long",
    "i want concise",
    "i want detailed",
    "i want answers",
    "i want responses",
    "i'd like answers",
    "i'd like responses",
    "i'd like you to always",
    "i'd like you to never",
    "i don't eat ",
    "i do not eat ",
    "i can't eat ",
    "i cannot eat ",
    "i never eat ",
    "i only eat ",
    "i don't drink ",
    "i do not drink ",
    "i avoid ",
    "i'm allergic",
    "i am allergic",
    "i'm intolerant",
    "i am intolerant",
    "i'm lactose",
    "i am lactose",
    "i'm gluten",
    "i am gluten",
    "i'm learning ",
    "i am learning ",
    "i'm studying ",
    "i am studying ",
    "i'm trying to learn ",
    "i am trying to learn ",
    "i work as ",
    "i'm new to ",
    "i am new to ",
    "i'm not a native",
    "i am not a native",
    "my native language",
    "my first language",
    "my mother tongue",
    "i speak ",
    "i'm colorblind",
    "i am colorblind",
    "i'm colour-blind",
    "i am colour-blind",
    "i'm color-blind",
    "i am color-blind",
    "i'm dyslexic",
    "i am dyslexic",
    "i'm blind",
    "i am blind",
    "i'm deaf",
    "i am deaf",
    "i'm hard of hearing",
    "i use a screen reader",
    "i'm left-handed",
    "i am left-handed",
    "prefiero ",
    "no me gusta",
    "no me gustan",
    "me gusta",
    "me gustan",
    "no como ",
    "estoy aprendiendo ",
    "soy alérgic",
    "je préfère ",
    "je n'aime pas",
    "j'aime ",
    "je ne mange pas",
    "j'apprends ",
    "je suis allergique",
    "ich bevorzuge ",
    "ich mag keine",
    "ich mag kein",
    "ich mag ",
    "ich esse kein",
    "ich lerne ",
    "ich bin allergisch",
];

/// "I'm a/an …" or "I am …" followed by one of these is a lasting fact that shapes answers.
const IDENTITY: &[&str] = &[
    "vegetarian",
    "vegan",
    "pescatarian",
    "pescetarian",
    "diabetic",
    "celiac",
    "coeliac",
    "halal",
    "kosher",
    "beginner",
    "novice",
    "expert",
    "professional",
    "student",
    "nurse",
    "doctor",
    "physician",
    "teacher",
    "developer",
    "programmer",
    "engineer",
    "designer",
    "lawyer",
    "scientist",
    "researcher",
    "chef",
    "pharmacist",
    "accountant",
    "data scientist",
    "software",
    "native speaker",
    "non-native",
    "complete beginner",
    "total beginner",
    "senior",
    "junior",
    "retired",
    "parent",
    "mom",
    "dad",
    "mother",
    "father",
];
/// The same in Spanish, French and German ("soy vegetariano", "je suis végane", "ich bin Veganer").
const IDENTITY_OPENINGS: &[&str] = &["soy ", "je suis ", "ich bin "];
const IDENTITY_OTHER: &[&str] = &[
    "vegetarian",
    "vegan",
    "végétarien",
    "végane",
    "végétalien",
    "diabétique",
    "diabetic",
    "principiante",
    "débutant",
    "anfänger",
    "experto",
    "experta",
    "expert",
    "enfermer",
    "infirmi",
    "médecin",
    "médico",
    "krankenpfleger",
    "krankenschwester",
    "ärzt",
    "arzt",
    "lehrer",
    "profesor",
    "professeur",
    "vegetarier",
    "veganer",
    "celíac",
    "cœliaque",
    "zöliakie",
];

/// Words that make a statement temporary, hypothetical, past or about this answer only.
const NOT_LASTING: &[&str] = &[
    "today",
    "tonight",
    "this morning",
    "this afternoon",
    "this evening",
    "this week",
    "this weekend",
    "this month",
    "this year",
    "right now",
    "at the moment",
    "for now",
    "this time",
    "this one",
    "this answer",
    "this paragraph",
    "this text",
    "this email",
    "this essay",
    "this code",
    "this list",
    "the last answer",
    "your last answer",
    "that answer",
    "above",
    "yesterday",
    "tomorrow",
    "last week",
    "last year",
    "used to",
    "if i were",
    "if i was",
    "if i had",
    "if i ever",
    "would be",
    "might be",
    "maybe i",
    "i was ",
    "i wasn't",
    "when i was",
    "i'm tired",
    "i am tired",
    "i'm hungry",
    "i am hungry",
    "i'm busy",
    "i am busy",
    "i'm bored",
    "i'm sick",
    "i am sick",
    "hoy",
    "esta semana",
    "ahora mismo",
    "aujourd'hui",
    "cette semaine",
    "heute",
    "diese woche",
    "gerade",
    "never mind",
    "nevermind",
];

/// Likings about the conversation itself, not a lasting preference ("I love this").
const ABOUT_THIS: &[&str] = &["it", "it!", "this", "that", "that one", "your answer", "the answer", "you", "them"];

/// Suggestions from the user messages among `messages`, leaving out what `stored` already holds
/// and what the unsafe-preference screen refuses. Stores nothing.
pub fn suggest(messages: &[ChatMessage], stored: &[Preference]) -> Vec<Suggestion> {
    let known: Vec<String> = stored.iter().map(|p| key(&p.text)).collect();
    let mut out: Vec<Suggestion> = Vec::new();
    for (i, m) in messages.iter().enumerate().filter(|(_, m)| m.role == "user") {
        for sentence in sentences(&m.content) {
            let Some(text) = preference_in(&sentence) else { continue };
            let k = key(&text);
            let fresh = !known.contains(&k) && !out.iter().any(|s| key(&s.text) == k);
            if fresh && text.chars().count() <= MAX_PREFERENCE_CHARS && screen_preference(&text).is_ok() {
                out.push(Suggestion { text, sentence, message: i });
            }
        }
    }
    out
}

/// The sentences of a message, each with its end mark (a question keeps its "?").
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c == '\n' || c == ';' {
            push_sentence(&mut current, &mut out);
            continue;
        }
        current.push(c);
        if matches!(c, '.' | '!' | '?') {
            push_sentence(&mut current, &mut out);
        }
    }
    push_sentence(&mut current, &mut out);
    out
}

fn push_sentence(current: &mut String, out: &mut Vec<String>) {
    let s = current.trim();
    if s.chars().any(char::is_alphabetic) {
        out.push(s.to_string());
    }
    current.clear();
}

/// The preference a sentence states, if it states one.
fn preference_in(sentence: &str) -> Option<String> {
    if sentence.ends_with('?') || sentence.starts_with('¿') {
        return None;
    }
    let lower = sentence.to_lowercase().replace(['’', '‘'], "'");
    let padded = format!(" {} ", lower.trim_end_matches(['.', '!']));
    if NOT_LASTING.iter().any(|w| padded.contains(&format!(" {w}"))) {
        return None;
    }
    let (start, rest) = strip_openings(&lower, FILLERS);
    let (dropped, rest) = strip_openings(rest, STANDING_DROPPED);
    let standing = STANDING.iter().any(|w| rest.starts_with(w));
    // "From now on, be brief." and "Please answer briefly." are standing only with their opening.
    let opened = dropped > 0 && !rest.is_empty();
    let liking = FIRST_PERSON.iter().find(|w| rest.starts_with(*w)).is_some_and(|w| !about_this(&rest[w.len()..]));
    if !(standing || opened || liking || identity(rest) || so_clause(rest)) {
        return None;
    }
    let offset = if standing || opened { start + dropped } else { start };
    Some(as_preference(&sentence[byte_offset(sentence, &lower, offset)..]))
}

/// Drops any of `openings` (each followed by a comma, a colon or a space) from the start;
/// returns how many bytes of `text` went and the rest.
fn strip_openings<'a>(text: &'a str, openings: &[&str]) -> (usize, &'a str) {
    let mut rest = text.trim_start();
    let mut longest_first: Vec<&&str> = openings.iter().collect();
    longest_first.sort_by_key(|o| std::cmp::Reverse(o.len()));
    loop {
        let found = longest_first
            .iter()
            .find(|o| rest.strip_prefix(**o).is_some_and(|after| after.starts_with([',', ':', ' ', '!', '.', '-'])));
        match found {
            Some(o) => rest = rest[o.len()..].trim_start_matches([',', ':', ' ', '!', '.', '-']),
            None => return (text.len() - rest.len(), rest),
        }
    }
}

fn about_this(object: &str) -> bool {
    let object = object.trim_end_matches(['.', '!', ' ']);
    ABOUT_THIS.contains(&object) || object.starts_with("this ") || object.starts_with("that ")
}

/// "I'm vegetarian", "I am a nurse", "soy vegetariano".
fn identity(rest: &str) -> bool {
    let after = ["i'm ", "i am ", "im "].iter().find_map(|o| rest.strip_prefix(o));
    if let Some(after) = after {
        let after = after.trim_start_matches("a ").trim_start_matches("an ").trim_start_matches("also ");
        let after = after.trim_start_matches("strictly ").trim_start_matches("a ").trim_start_matches("an ");
        return IDENTITY.iter().any(|w| after.starts_with(w));
    }
    IDENTITY_OPENINGS
        .iter()
        .find_map(|o| rest.strip_prefix(o))
        .is_some_and(|after| IDENTITY_OTHER.iter().any(|w| after.trim_start_matches("un ").contains(w)))
}

/// "I live in Canada, so use metric": a first-person reason followed by a standing wish.
fn so_clause(rest: &str) -> bool {
    let first_person = rest.starts_with("i ") || rest.starts_with("i'm ") || rest.starts_with("my ");
    first_person
        && [", so ", " so please ", ", please "].iter().filter_map(|s| rest.split_once(s).map(|(_, after)| after)).any(
            |after| {
                let (_, after) = strip_openings(after, STANDING_DROPPED);
                STANDING.iter().any(|w| after.starts_with(w))
                    || ["use ", "answer ", "give ", "explain ", "keep ", "write ", "reply "]
                        .iter()
                        .any(|w| after.starts_with(w))
            },
        )
}

/// Where byte `offset` of the lower-cased `lower` falls in `original` (lower-casing can change
/// a character's length), counted in characters.
fn byte_offset(original: &str, lower: &str, offset: usize) -> usize {
    let chars = lower.get(..offset).map_or(0, |s| s.chars().count());
    original.char_indices().nth(chars).map_or(original.len(), |(b, _)| b)
}

/// The suggested text: capitalised, ending with a full stop.
fn as_preference(text: &str) -> String {
    let text = text.trim().trim_end_matches(['.', '!', ' ']).trim_start_matches([',', ':', ' ']);
    let mut chars = text.chars();
    let first = chars.next().map(|c| c.to_uppercase().collect::<String>()).unwrap_or_default();
    format!("{first}{}.", chars.as_str())
}

/// A text compared without case, spaces or punctuation.
fn key(text: &str) -> String {
    text.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}
