//! Which stored preferences apply to a request: "I am vegetarian." steers a recipe, not a
//! question about sorting a list; "Be concise." steers everything.
//!
//! A preference that names a topic (food, code, units, travel, ...) by its cue words is about
//! that topic and the topics it reaches ("I live in Canada." reaches money, shopping and
//! travel). One that names none is about every request when it tells how to answer (tone,
//! length, format), and otherwise a fact about the person that applies where a request shares
//! one of its words. A request is about the topics its cue words name; a weak cue ("python",
//! "java", "german") counts only beside another cue of the same topic, so a question about the
//! snake is not about code. The latest user message counts fully and earlier ones in part, so
//! a follow-up ("and for dessert?") stays on its conversation's topic. `tests/relevance.rs`
//! measures this on tables written apart from it (EVAL.md, "Relevance").

use serde::Serialize;

use super::cues::{matches_at, words};
use super::Preference;
use crate::tokenizer::ChatMessage;

/// A preference steers only at or above this relevance.
pub const RELEVANT: f32 = 0.5;
/// What a topic named only by earlier user messages counts for.
const EARLIER_MESSAGES: f32 = 0.5;

/// One stored preference as one request saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct PreferenceUse {
    pub id: String,
    pub text: String,
    /// 1 for a preference about every request (or marked `always`), else how strongly the
    /// conversation is about the preference's topics (0 when not at all).
    pub relevance: f32,
    /// Whether it steered the answer.
    pub active: bool,
}

/// A topic: the cue words that name it (`~` before a weak cue, `*` for any ending) and the
/// other topics a preference about it also applies to.
struct Topic {
    name: &'static str,
    cues: &'static str,
    reaches: &'static [&'static str],
}

const TOPICS: &[Topic] = &[
    Topic {
        name: "food",
        cues: "recipe*, cook*, dinner*, lunch*, breakfast*, brunch*, meal*, snack*, bake, baking, baked, dish, \
            dishes, eat, eating, ate, food*, restaurant*, menu*, grocer*, ingredient*, soup*, pasta, lasagna, \
            pizza*, salad*, sauce*, curry, stew*, burger*, sandwich*, cake*, cookie*, bread, dessert*, \
            chicken, beef, pork, fish, steak*, egg, eggs, cheese*, vegetable*, veggie*, fruit*, smoothie*, \
            barbecue, bbq, grill*, roast*, fry, fried, taco*, sushi, noodle*, rice, potluck, picnic, takeout, \
            takeaway, hungry, vegan*, vegetarian*, meat*, kosher, halal, gluten*, lactose, dairy, nut, nuts, \
            peanut*, shellfish, allerg*, cuisine, flavo*, spic*, kitchen, oven, protein*, diet, dietary, \
            nutrition*, sugar*, keto, paleo, drink*, cocktail*, wine, beer, coffee, tea, coeliac, celiac, \
            mocktail*, gelatin*, bake sale, cereal*, diabet*, sweets, candy, candies, chocolate*, gumm*, \
            pregnan*, caffeine, sashimi, oyster*, marinade*, order at",
        reaches: &[],
    },
    Topic {
        name: "code",
        cues: "code, coding, coder, program, programs, programming, programmer, function*, script*, bug, bugs, \
            debug*, compile*, compiler, algorithm*, regex*, api, apis, sql, query, queries, database*, \
            array*, loop*, variable*, recursion, recursive, git, github, repo, repository, html, css, \
            frontend, backend, software, dev, stack trace, exception, json, csv, parse*, parsing, library, \
            framework, react, npm, docker, linux, terminal, command line, bash, leetcode, unit test*, class, \
            method, string, strings, integer*, data structure*, linked list, hash map, dictionary, \
            sort a list, sorting, typescript, javascript, c++, c#, kotlin, ~python, ~java, ~rust, ~go, ~ruby, \
            ~swift, ~scala, ~php, ~perl, ~haskell, null, crash*, interface*, abstract class, div, website*, \
            web page, responsive, async, await, thread*, ui, android, ios, app, apps, compil*, struct*, \
            snake_case, camelcase, mutex*, goroutine*, concurren*, server*, endpoint*, fetch, undefined, \
            cron, web app, form submission, validat*, memory leak*",
        reaches: &[],
    },
    Topic {
        name: "units",
        cues: "metric, imperial, unit, units, celsius, fahrenheit, kilo*, km, kg, mile, miles, pound, pounds, lbs, feet, foot, inch*, gram*, ounce*, oz, cup, cups, litre*, liter*, gallon*, meter*, metre*, centimet*, measurement*, measure*, how much, how many, how far, how long, how hot, how cold, how big, how tall, how heavy, how fast, recipe*, distance*, temperature*, size, km, per day, per week, weigh, weighs, weight",
        reaches: &[],
    },
    Topic {
        name: "travel",
        cues: "trip*, travel*, flight*, fly, flying, hotel*, airbnb, hostel*, itinerar*, vacation*, abroad, passport*, visa, airport*, luggage, suitcase, road trip, tour, tours, tourist*, sightseeing, beach*, camping, destination*, backpack*, cruise*, city break, weekend in, days in, visit, visiting, jet lag, train ticket*, rental car, border, week away, getaway, days off",
        reaches: &[],
    },
    Topic {
        name: "health",
        cues: "health*, doctor*, symptom*, medic*, pain*, ache*, headache*, sick, ill, illness, fever, flu, injur*, exercis*, workout*, work out, gym, jog*, fitness, lose weight, sleep*, stress*, anxi*, vitamin*, blood, heart, diabet*, pregnan*, therap*, mental, yoga, stretch*, muscle*, marathon, swim*, cycling, knee*, back pain, prescription*, pill*, drug*, dose*, dosage, nurse*, hospital*, surgery, condition, asthma, migraine*, insulin, allerg*, calorie*, diet, nutrition*, protein*, bike*, biking, cycl*, ride, rides, riding, vaccin*, throat, walk*, sore, hurt*, glucose, surgery, paracetamol, ibuprofen, medicine*, ~run, ~running, ~runs, race, races, km, septic, sepsis, patholog*, physiolog*, infection*, wound*, bleed*, fracture*, cpr, first aid, first-aid, overdose, trauma, tingl*, numb*, dizz*, nause*, rash*, cough*, swollen, swelling, bruis*, itch*, caffeine, blood pressure, hot spring*, sauna*, long run, running shoe*, mileage, my run, a run, smoke, smok*, mould, mold, air purifier*, air quality, pollen, dust",
        reaches: &[],
    },
    Topic {
        name: "money",
        cues: "money, budget*, saving, savings, save money, invest*, stock*, loan*, mortgage*, debt*, tax, taxes, salary, income, bank*, credit, retire*, price*, cost*, cheap*, afford*, expens*, spend*, dollar*, euro*, crypto*, bitcoin, insurance, rent, bills, pay, paying, paid, finance*, financial, frugal, fund*, emergency fund, tipping",
        reaches: &["shopping", "travel"],
    },
    Topic {
        name: "shopping",
        cues: "buy*, bought, purchas*, shop, shopping, gift*, present for, deal, deals, discount*, order, \
            amazon, brand*, product*, laptop*, phone*, shoes, clothes, jacket*, dress, store, stores, sale",
        reaches: &[],
    },
    Topic {
        name: "writing",
        cues: "write, writing, wrote, email*, e-mail*, letter*, essay*, draft*, cover letter*, resume, cv, \
            poem*, story, stories, blog*, post, message, speech*, toast, caption*, proofread*, rewrite, \
            reword*, edit, editing, paragraph*, grammar, spelling",
        reaches: &[],
    },
    Topic {
        name: "science",
        cues: "science*, scientific, physics, chemistry, chemical*, biology, math*, equation*, atom*, molecule*, planet*, space, star, stars, gravity, evolution, cell, cells, dna, climate, photosynthesis, experiment*, homework, formula*, calculat*, energy, electric*, quantum, theory, universe, moon, sun, volcano*, earthquake*, weather, statistic*, p-value*, bayes*, regression*, sample size, a/b test*, probabilit*, variance, correlat*, dataset*, trend line, reaction*, heat, exam*, revis*, study, studying, fraction*, algebra, geometry, arithmetic, calculus, trigonometr*",
        reaches: &[],
    },
    Topic {
        name: "home",
        cues: "house, diy, repair*, fix, fixing, clean*, garden*, plant, plants, paint*, furniture, shelf, \
            shelves, wall, walls, floor*, bathroom, kitchen, drill*, leak*, roof*, renovat*, decor*, laundry, \
            mold, mould, lawn, heater, heating, plumbing, tile*, apartment, flat, room, bedroom, cabinet*, \
            sink, toilet, houseplant*, at home, shed",
        reaches: &[],
    },
    Topic {
        name: "work",
        cues: "job, jobs, boss, manager, colleague*, coworker*, co-worker*, career*, interview*, promotion, office, client*, customer*, supplier*, invoice*, deadline*, meeting*, presentation*, shift, shifts, salary, freelanc*, logo*, portfolio*, nurse, teacher*, designer*, developer*, dev, engineer*, lawyer*, accountant*, paramedic*, student*, graders, classroom, lesson*, pupils, ~work, at work, my work, teach, teaching, my class, business*, small business, my shop, i run a, pilot*, captain, crew, cockpit, tutor*",
        reaches: &[],
    },
    Topic {
        name: "time",
        cues: "clock, 24-hour, 12-hour, am/pm, time, times, schedul*, timetable*, itinerar*, routine*, o'clock, \
            what time, plan a day, plan my, monday*, tuesday*, wednesday*, thursday*, friday*, saturday*, \
            sunday*, weekend*, tonight, tomorrow, evening*, calendar*, appointment*, meeting*, deadline*, pm, \
            p.m, noon, midnight, cron",
        reaches: &[],
    },
    Topic {
        name: "colour",
        cues: "colour*, color*, chart*, plot, plots, graph*, diagram*, palette*, shade*, visuali*, medium-rare",
        reaches: &[],
    },
    Topic {
        name: "design",
        cues: "design*, figma, svg, photoshop, illustrator, font*, typograph*, logo*, drawing, sketch*, \
            portfolio*, mockup*, branding",
        reaches: &["work"],
    },
    Topic {
        name: "games",
        cues: "game, games, gaming, gamer*, videogame*, video game*, console*, steam, xbox, playstation, \
            nintendo, esports, strategy game*",
        reaches: &[],
    },
    Topic {
        name: "music",
        cues: "music*, cello*, violin*, viola*, piano*, guitar*, drum*, orchestra*, band, concert*, instrument*, \
            choir*, sing, singing, song*, rehears*, sheet music, scales",
        reaches: &[],
    },
    Topic {
        name: "faith",
        cues: "ramadan, iftar, suhoor, sehri, eid, fast, fasting, shabbat, sabbath, lent, passover, diwali, \
            christmas, church*, mosque*, synagogue*, temple*, pray*, religio*",
        reaches: &["time"],
    },
    Topic {
        name: "access",
        cues: "wheelchair*, mobility, accessib*, step-free, stairs, staircase*, ramp*, elevator*, lift, lifts, disabled, disabilit*, seated, walking aid*, cane, hearing, hearing aid*, hard of hearing, deaf*, blind, low vision, eyesight, hear, noisy, noise*, listen*, subtitle*, video call*, phone call*, night out, day out, venue*, downtown, outing*",
        reaches: &["travel", "home"],
    },
    Topic {
        name: "nature",
        cues: "bee, bees, beekeep*, hive*, honey, wasp*, insect*, pesticid*, pollinat*, flower*, crop*, farm*, harvest*, orchard*, chicken coop*, beehive*, honeybee*",
        reaches: &[],
    },
    Topic {
        name: "howto",
        cues: "how do i, how can i, how to, how should i, instruction*, guide, \
            set up, install*, recipe*",
        reaches: &[],
    },
    Topic {
        name: "age",
        cues: "retire*, retiree*, pension*, senior*, elderly, old age",
        reaches: &["money", "travel", "health"],
    },
    Topic { name: "compare",
        cues: "compar*, versus, vs, difference*, better, or, worth it, weigh* up, option*, pros and cons, choose between",
        reaches: &[] },
    Topic {
        name: "locale",
        cues: "live in, living in, based in, my country, uk, britain, england, scotland, ireland, canada, \
            australia*, new zealand, usa, us, america, india, germany, france, spain, law, laws, legal*",
        reaches: &["money", "shopping", "travel", "home"],
    },
    Topic {
        name: "family",
        cues: "kid, kids, child, children, son, sons, daughter*, baby, babies, toddler*, parent*, mom, dad, mum, mother, father, family, bedtime, birthday*, teen*, school, playdate*, nanny, babysit*, girls, boys, youngest, eldest, oldest, little one*, grandchild*, grandkid*, granddaughter*, grandson*, wife, husband, partner, lunchbox*, school lunch*",
        reaches: &[],
    },
    Topic {
        name: "pets",
        cues: "dog, dogs, cat, cats, puppy, puppies, kitten*, pet, pets, vet, vets, leash, litter, retriever*, \
            labrador*, poodle*, terrier*, spaniel*, puppy, hamster*, rabbit*, aquarium, pup, pups, collie*, \
            shepherd*, husk*, beagle*, bulldog*, dachshund*, pug, pugs, chihuahua*, corgi*, tabby, dog food, \
            cat food",
        reaches: &["home"],
    },
    Topic {
        name: "language",
        cues: "language*, translat*, word for, vocabulary, how do you say, how to say, phrase*, fluent, conjugat*, ~german, ~french, ~spanish, ~italian, ~japanese, ~chinese, ~mandarin, ~korean, ~portuguese, ~dutch, ~russian, ~arabic, how do i say, how would i say, english word, anime, manga, kanji, hiragana, katakana, listening practice, in the original, subtitles",
        reaches: &[],
    },
];

/// Words that name a kind of answer rather than a topic: in a preference they name no topic
/// ("Please write in a formal tone.", "Include a joke.", "Explain with examples.").
const STYLE_WORDS: &str = "british spelling, american spelling, british english, american english, us english, \
    uk english, joke*, humo*, funny, emoji*, example*, story, stories, post, write, writing, tone, \
    spelling, grammar, answer*, sentence*, word, words, term, terms, heading*, bullet*, format*, explain*, paragraph*";

/// Topics that say whom a preference is about rather than what: beside another topic they name
/// none ("My son has a peanut allergy." is about food, not about every question on children).
const WHOSE: &[&str] = &["family"];

fn cues(list: &'static str) -> impl Iterator<Item = &'static str> {
    list.split(',').map(str::trim)
}

/// How a text is read: a preference names a topic by a weak cue alone ("I write Rust."), and
/// its style words name none; a request needs a strong cue.
#[derive(Clone, Copy, PartialEq)]
enum Reading {
    Preference,
    Request,
}

/// The topics `text` names.
fn topics_named(text: &str, reading: Reading) -> Vec<&'static str> {
    let words = words(text);
    // Which words are style words is the same for every topic: found once.
    let read: Vec<usize> = (0..words.len())
        .filter(|&i| reading == Reading::Request || !cues(STYLE_WORDS).any(|c| matches_at(&words, i, c)))
        .collect();
    let mut out = Vec::new();
    for topic in TOPICS {
        let (mut strong, mut weak) = (false, false);
        for cue in cues(topic.cues) {
            let (is_weak, cue) = cue.strip_prefix('~').map_or((false, cue), |c| (true, c));
            let found = if is_weak { weak } else { strong };
            if found {
                continue;
            }
            let hit = read.iter().any(|&i| matches_at(&words, i, cue));
            if is_weak {
                weak |= hit;
            } else {
                strong |= hit;
            }
        }
        if strong || (weak && reading == Reading::Preference) {
            out.push(topic.name);
        }
    }
    out
}

/// The topics a preference is about, with the ones they reach; empty for a preference about
/// every request.
fn preference_topics(text: &str) -> Vec<&'static str> {
    let text = without_parentheses(text);
    // "Be warm and encouraging, I get anxious easily.": the reason after a styled instruction
    // names no topic of its own.
    let first_clause = text.split([',', ';', ':']).next().unwrap_or_default();
    let read = if opens_an_instruction(first_clause) && is_styled(first_clause) { first_clause } else { &text };
    let mut named = topics_named(read, Reading::Preference);
    if states_an_age(read) && !named.contains(&"age") {
        named.push("age");
    }
    if named.iter().any(|t| !WHOSE.contains(t)) {
        named.retain(|t| !WHOSE.contains(t));
    }
    let mut out = named.clone();
    for topic in TOPICS.iter().filter(|t| named.contains(&t.name)) {
        for reached in topic.reaches {
            if !out.contains(reached) {
                out.push(reached);
            }
        }
    }
    out
}

/// Words that start a statement about the person.
const FIRST_PERSON: &str = "i, i'm, im, i've, ive, i'd, my, we, we're, we've, our, me, mine";
/// Words that start an instruction about the answer ("Be concise.", "Never use emoji.").
const INSTRUCTION_OPENINGS: &str = "be, use, keep, give, answer, write, explain, avoid, add, include, show, always, \
    never, please, no, don't, dont, do, skip, cite, number, assume, tell, make, stop, respond, reply, put, format, \
    talk, speak, list, prefer, limit, start, end, get, go, mention, sign";
/// Style dimensions (`relate`) that make a text an instruction about the answer.
const STYLE_DIMENSIONS: &[&str] =
    &["length", "technical level", "formality", "humour", "emoji", "format", "spelling", "examples", "warmth"];
/// Words too common to tie a fact to a request.
const COMMON_WORDS: &str = "have, make, like, want, need, know, give, take, keep, going, good, best, really, just, \
    about, some, what, when, where, which, there, their, this, that, these, those, with, from, your, would, could, \
    should, does, doing, also, very, much, more, most, into, than, then, them, they, were, been, being, will, only, \
    mostly, usually, every, each, other, over, under, after, before, please, thanks";

/// `text` without what it puts in parentheses: examples of what it says ("Use Canadian spelling
/// (colour, centre).") rather than topics of their own.
fn without_parentheses(text: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Whether a text states a fact about the person ("I play the cello.", "My dog is old.") rather
/// than telling how to answer ("Be concise.", "I'm dyslexic, so short sentences help.").
fn is_fact(text: &str) -> bool {
    let opens_first_person = words(text).first().is_some_and(|w| cues(FIRST_PERSON).any(|c| c == w));
    opens_first_person && !opens_an_instruction(text) && !is_styled(text)
}

fn opens_an_instruction(text: &str) -> bool {
    words(text).first().is_some_and(|w| cues(INSTRUCTION_OPENINGS).any(|c| c == w))
}

/// Whether a text names a kind of answer: a style word or a stance on a style dimension.
fn is_styled(text: &str) -> bool {
    let words = words(text);
    (0..words.len()).any(|i| cues(STYLE_WORDS).any(|c| matches_at(&words, i, c)))
        || super::relate::stances(text).iter().any(|(d, _)| STYLE_DIMENSIONS.contains(&d.as_str()))
}

/// "I'm 72", "I am 68": an age from which savings, travel and health advice differ.
fn states_an_age(text: &str) -> bool {
    let words = words(text);
    words.windows(2).any(|w| {
        let said = matches!(w[0].as_str(), "i'm" | "im" | "am" | "aged");
        said && w[1].parse::<u32>().is_ok_and(|age| (55..=110).contains(&age))
    })
}

/// The words of a fact that tie it to a request: not common, four letters or more, cut to
/// five letters so "rides" meets "ride" and "riding" meets "rider".
fn content_stems(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .filter(|w| w.chars().count() >= 4 && !cues(COMMON_WORDS).any(|c| c == w))
        .map(|w| w.chars().take(5).collect())
        .collect()
}

/// The user messages of a conversation as relevance reads them, latest first: the topics each
/// names and its content stems. Only the last `MESSAGES_READ` messages are read (a topic left
/// further back no longer steers), and the first `WORDS_READ` characters of each, so a pasted
/// book costs what a page does.
struct Conversation {
    messages: Vec<(Vec<&'static str>, Vec<String>)>,
}

const MESSAGES_READ: usize = 3;
const WORDS_READ: usize = 4000;

impl Conversation {
    fn read(messages: &[ChatMessage]) -> Self {
        let user = messages.iter().rev().filter(|m| m.role == "user").take(MESSAGES_READ);
        let read = user.map(|m| {
            let text: String = m.content.chars().take(WORDS_READ).collect();
            (topics_named(&text, Reading::Request), content_stems(&text))
        });
        Conversation { messages: read.collect() }
    }

    /// 1 when the latest message meets `hit`, `EARLIER_MESSAGES` when only earlier ones do.
    fn strength(&self, hit: impl Fn(&[&'static str], &[String]) -> bool) -> f32 {
        match self.messages.iter().position(|(topics, stems)| hit(topics, stems)) {
            Some(0) => 1.0,
            Some(_) => EARLIER_MESSAGES,
            None => 0.0,
        }
    }
}

/// How relevant a preference is to a conversation: 1 for one that names no topic and is not a
/// fact about the person (an instruction: it is about every request); else 1 when the latest user message names one of its topics
/// (or, for a fact that names none, shares a word with it), `EARLIER_MESSAGES` when only
/// earlier user messages do, and 0 otherwise.
pub fn relevance(preference: &str, messages: &[ChatMessage]) -> f32 {
    relevance_in(preference, &Conversation::read(messages))
}

fn relevance_in(preference: &str, conversation: &Conversation) -> f32 {
    let about = preference_topics(preference);
    if !about.is_empty() {
        return conversation.strength(|topics, _| topics.iter().any(|t| about.contains(t)));
    }
    if !is_fact(preference) {
        return 1.0;
    }
    let mine = content_stems(preference);
    conversation.strength(|_, stems| stems.iter().any(|w| mine.contains(w)))
}

/// Every stored preference as the conversation sees it (see [`relevance`]); `always` ones and
/// the harmlessness principle at 1.
pub fn relevances<'p>(preferences: &'p [Preference], messages: &[ChatMessage]) -> Vec<(&'p Preference, f32)> {
    let conversation = Conversation::read(messages);
    preferences
        .iter()
        .map(|p| (p, if p.always || p.is_universal() { 1.0 } else { relevance_in(&p.text, &conversation) }))
        .collect()
}
