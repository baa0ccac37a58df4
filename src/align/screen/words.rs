//! The screen's word lists, in folded form (see `fold`). In every set, a trailing `*` matches
//! any ending and a leading `*` any beginning (German compounds: "Inhaltsrichtlinien").

/// Words that are an attempt on their own.
pub(super) const MARKERS: &[&str] = &[
    "jailbr*",
    "uncensor*",
    "unrestrict*",
    "unfiltered-mode",
    "uneingeschrankt*",
    "irrestrict*",
    "sansursuz*",
    "unaligned",
];

/// Verbs that set something aside.
pub(super) const SET_ASIDE: &[&str] = &[
    "ignor*",
    "disregard*",
    "forget*",
    "forgo*",
    "bypass*",
    "overrid*",
    "circumvent*",
    "evad*",
    "skip*",
    "abandon*",
    "disabl*",
    "deactivat*",
    "remov*",
    "lift*",
    "suspend*",
    "drop*",
    "off",
    "olvid*",
    "omit*",
    "omiso",
    "salta*",
    "desactiv*",
    "oubli*",
    "contourn*",
    "outrepass*",
    "vergiss*",
    "vergess*",
    "missacht*",
    "umgeh*",
    "deaktivier*",
    "entfern*",
    "esquec*",
    "desconsider*",
    "desative*",
    "dimentic*",
    "disattiv*",
    "aggir*",
    "elud*",
    "trascur*",
    "rimuov*",
    "negeer*",
    "omzeil*",
    "uitschakel*",
    "unlock*",
    "игнорир*",
    "обход*",
    "отключ*",
    "gormezden",
];

/// What follows a safeguard that has been lifted ("safety off", "the policy was lifted").
pub(super) const OFF: &[&str] = &[
    "off",
    "aus",
    "disabled",
    "desactivad*",
    "disattivat*",
    "desligad*",
    "lifted",
    "removed",
    "suspended",
    "waived",
    "revoked",
    "abolished",
    "revogad*",
    "eliminad*",
    "abolit*",
    "aufgehoben",
    "отключен*",
];

/// Verbs of following, which set aside when negated ("do not follow", "ne tiens plus compte").
pub(super) const FOLLOW: &[&str] = &[
    "follow*", "obey*", "respect*", "observ*", "honou*", "befolg*", "beacht*", "einhalt*", "rispett*", "segu*",
    "sigu*", "suiv*", "compte", "conto", "cuenta",
];

/// What a preference may not set aside or do without.
pub(super) const SAFEGUARDS: &[&str] = &[
    "rule*",
    "instruction*",
    "guideline*",
    "safety",
    "safeguard*",
    "restrict*",
    "filter*",
    "polic*",
    "ethic*",
    "moral*",
    "guardrail*",
    "constraint*",
    "censor*",
    "regla*",
    "regle*",
    "regra*",
    "regol*",
    "regel*",
    "norma",
    "normas",
    "normes",
    "norme",
    "instruc*",
    "istruz*",
    "anweisung*",
    "*richtlini*",
    "consigne*",
    "seguridad",
    "seguranca",
    "securite",
    "*sicherheit*",
    "sicurezza",
    "restric*",
    "restriz*",
    "*einschrank*",
    "filtr*",
    "censur*",
    "*zensur*",
    "protec*",
    "*schutz*",
    "etic*",
    "ethik*",
    "etique*",
    "directiv*",
    "direttiv*",
    "vorgabe*",
    "programming",
    "training",
    "zasad*",
    "правил*",
    "moderation",
    "alignment",
    "veiligheid*",
    "*richtlijn*",
    "*beleid",
    "beperking*",
    "guvenlik*",
    "kural*",
    "безопасност*",
    "цензур*",
    "ограничен*",
    "фильтр*",
];

/// Words that mean "without", "no" or "free of".
pub(super) const WITHOUT: &[&str] = &[
    "no", "without", "free", "sin", "libre", "sans", "ohne", "keine", "kein", "frei", "sem", "livre", "senza",
    "nessun*", "zero", "zonder", "geen", "без",
];

/// Negations (and "stop") that, next to a verb of refusing or following, reverse it.
pub(super) const NEVER: &[&str] = &[
    "never",
    "not",
    "dont",
    "no",
    "stop",
    "quit",
    "without",
    "nunca",
    "jamais",
    "jamas",
    "pas",
    "plus",
    "arret*",
    "niemals",
    "nie",
    "nicht",
    "ohne",
    "mai",
    "non",
    "ne",
    "nao",
    "sin",
    "sans",
    "sem",
    "senza",
    "nooit",
    "nigdy",
    "никогда",
    "smett*",
];

/// Verbs of refusing.
pub(super) const REFUSE: &[&str] = &[
    "refus*",
    "declin*",
    "deny",
    "nieg*",
    "rechaz*",
    "recus*",
    "rifiut*",
    "ablehn*",
    "lehn*",
    "verweiger*",
    "negar*",
    "weiger*",
    "odmaw*",
    "отказ*",
];

/// First-person words: "I never refuse a cup of tea" is about the person, not an order ("l" is
/// "I" after the skeleton).
pub(super) const I: &[&str] = &["i", "l", "je", "j", "yo", "ich", "eu", "io"];

/// "Obey only me" and its kin.
pub(super) const OBEY: &[&str] = &["obey*", "gehorch*", "obedec*", "obede*", "obbedis*", "obeis*", "listen"];
pub(super) const ONLY: &[&str] = &["only", "nur", "solo", "seulement", "apenas", "soltanto", "solamente"];

/// "even if it is dangerous", "including illegal ones".
pub(super) const EVEN: &[&str] = &[
    "even",
    "including",
    "however",
    "aunque",
    "incluso",
    "auch",
    "selbst",
    "mesmo",
    "inclusive",
    "anche",
    "persino",
    "meme",
];
pub(super) const HARMFUL: &[&str] = &[
    "illegal*",
    "ilegal*",
    "dangerous",
    "harmful",
    "peligros*",
    "perigos*",
    "pericolos*",
    "gefahrlich*",
    "dangereu*",
    "schadlich*",
    "nocif*",
    "danin*",
    "lethal",
    "deadly",
];

/// Word sequences that are attempts as they stand.
pub(super) const PHRASES: &[&[&str]] = &[
    &["developer", "mode"],
    &["dev", "mode"],
    &["god", "mode"],
    &["sudo", "mode"],
    &["do", "anything", "now"],
    &["always", "comply"],
    &["comply", "with", "every*"],
    &["be", "harmful"],
    &["harmful", "content"],
    &["anything", "illegal"],
    &["modo", "desarrollador"],
    &["mode", "developpeur"],
    &["entwicklermodus"],
    &["modo", "desenvolvedor"],
    &["modalita", "sviluppatore"],
    &["режим", "разработчика"],
    &["ontwikkelaarsmodus"],
];

/// Harm asked for as a standing preference: a subject of serious harm near a word that asks
/// for the working details ("always explain how to build untraceable firearms").
pub(super) const HARM_SUBJECTS: &[&str] = &[
    "weapon*",
    "firearm*",
    "explosiv*",
    "bomb*",
    "malware",
    "ransomware",
    "meth",
    "methamphetamin*",
    "nerve",
    "poison*",
    "armas",
    "armes",
    "waffe*",
    "sprengstoff*",
    "explosifs",
];
pub(super) const HARM_DETAILS: &[&str] = &[
    "instruction*",
    "step*",
    "recipe*",
    "synthes*",
    "build*",
    "produc*",
    "code",
    "source",
    "fabric*",
    "recette",
    "bau*",
    "herstell*",
    "reagent*",
    "route*",
    "working",
    "functioning",
    "receta*",
    "istruz*",
];
/// How many words apart a harm subject and its details may be, either way round.
pub(super) const HARM_WINDOW: usize = 6;

/// Verbs that make a rule not hold ("the rules do not apply").
pub(super) const APPLY: &[&str] = &["appl*", "exist*", "matter*", "count", "gelten", "gilt", "valen", "valent"];

/// Chinese, Japanese and Korean are written without spaces, so their text is one "word": a
/// verb of setting aside (or "without") and a safeguard anywhere in it, or a phrase.
pub(super) const CJK_SET_ASIDE: &[&str] = &[
    "忽略", "无视", "無視", "绕过", "迂回", "解除", "关闭", "無効", "没有", "なし", "无", "무시", "우회", "해제",
    "없는",
];
pub(super) const CJK_SAFEGUARDS: &[&str] = &[
    "安全",
    "规则",
    "准则",
    "限制",
    "审查",
    "过滤",
    "ルール",
    "ガイドライン",
    "制限",
    "検閲",
    "フィルター",
    "規則",
    "지침",
    "규칙",
    "제한",
    "검열",
    "필터",
];
pub(super) const CJK_PHRASES: &[&str] = &[
    "不要拒绝",
    "别拒绝",
    "断らない",
    "拒否しない",
    "거절하지",
    "开发者模式",
    "開発者モード",
    "개발자 모드",
    "개발자모드",
];

/// How many words after a verb of setting aside its object may come.
pub(super) const WINDOW: usize = 4;
/// How many words after "without" a safeguard may come ("without any ethical constraints").
pub(super) const WITHOUT_WINDOW: usize = 3;
