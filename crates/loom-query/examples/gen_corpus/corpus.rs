//! A deterministic synthetic document corpus: the same index gives the same document on
//! every machine and run (a splitmix64 stream seeded by the index), so the example data,
//! the tests and the benchmark agree without shipping large files.

// Shared by the generator example and the benchmark; each uses a different part.
#![allow(dead_code)]

use serde_json::{Value, json};

/// Categories and their topic words.
pub(crate) const CATEGORIES: [(&str, [&str; 10]); 8] = [
    (
        "finance",
        [
            "budget", "forecast", "revenue", "invoice", "audit", "expense", "cashflow", "tax",
            "ledger", "margin",
        ],
    ),
    (
        "legal",
        [
            "contract",
            "clause",
            "liability",
            "compliance",
            "litigation",
            "agreement",
            "regulation",
            "patent",
            "license",
            "settlement",
        ],
    ),
    (
        "engineering",
        [
            "deployment",
            "latency",
            "database",
            "kubernetes",
            "pipeline",
            "refactor",
            "outage",
            "api",
            "cache",
            "migration",
        ],
    ),
    (
        "research",
        [
            "experiment",
            "hypothesis",
            "dataset",
            "model",
            "evaluation",
            "benchmark",
            "survey",
            "citation",
            "analysis",
            "prototype",
        ],
    ),
    (
        "marketing",
        [
            "campaign",
            "brand",
            "audience",
            "conversion",
            "newsletter",
            "launch",
            "engagement",
            "seo",
            "webinar",
            "funnel",
        ],
    ),
    (
        "hr",
        [
            "onboarding",
            "hiring",
            "benefits",
            "payroll",
            "training",
            "performance",
            "retention",
            "policy",
            "interview",
            "leave",
        ],
    ),
    (
        "operations",
        [
            "logistics",
            "inventory",
            "supplier",
            "warehouse",
            "shipment",
            "procurement",
            "schedule",
            "capacity",
            "vendor",
            "maintenance",
        ],
    ),
    (
        "security",
        [
            "vulnerability",
            "encryption",
            "incident",
            "phishing",
            "firewall",
            "access",
            "breach",
            "patch",
            "authentication",
            "credential",
        ],
    ),
];

const DOC_TYPES: [&str; 8] = [
    "report",
    "review",
    "memo",
    "plan",
    "summary",
    "proposal",
    "postmortem",
    "guide",
];
const ADJECTIVES: [&str; 12] = [
    "quarterly",
    "annual",
    "internal",
    "draft",
    "final",
    "updated",
    "regional",
    "critical",
    "preliminary",
    "revised",
    "weekly",
    "strategic",
];
const COMMON: [&str; 12] = [
    "team",
    "customer",
    "project",
    "quarter",
    "process",
    "stakeholder",
    "roadmap",
    "deadline",
    "risk",
    "meeting",
    "department",
    "board",
];
const VERBS: [&str; 10] = [
    "describes",
    "reviews",
    "summarizes",
    "updates",
    "questions",
    "outlines",
    "tracks",
    "compares",
    "explains",
    "flags",
];
const OUTCOMES: [&str; 8] = [
    "needs a decision by the end of the month",
    "was approved after a short discussion",
    "is blocked on another team",
    "should be revisited next quarter",
    "has improved since the last review",
    "remains the main open risk",
    "was escalated to the board",
    "is on track",
];

/// Syllables of project codenames.
const SYLLABLES: [&str; 16] = [
    "ka", "lo", "mi", "ver", "dra", "sol", "nex", "ti", "ru", "zan", "bel", "qo", "fen", "tur",
    "wy", "pa",
];

/// How many distinct project codenames documents mention (each in about 1 of
/// `CODENAMES` documents: a selective search term, unlike the topic words).
pub(crate) const CODENAMES: usize = 500;

/// Project codename `n` (`n < 4096`), a made-up word such as `kaverzan`.
pub(crate) fn codename(n: usize) -> String {
    // 7 is coprime with 16³, so n ↦ 7n mod 4096 never repeats.
    let k = (n * 7) % 4096;
    format!(
        "{}{}{}",
        SYLLABLES[k / 256],
        SYLLABLES[(k / 16) % 16],
        SYLLABLES[k % 16]
    )
}

/// The first year of `year` values.
pub(crate) const FIRST_YEAR: i64 = 2015;

/// splitmix64: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// The id of document `index`: `doc-000042`.
pub(crate) fn id(index: usize) -> String {
    format!("doc-{index:06}")
}

/// Document `index`: `id, title, category, year, score, has_attachment, tags, summary,
/// full_text`.
pub(crate) fn document(index: usize) -> Value {
    let mut rng = Rng::new(index as u64);
    let (category, topics) = CATEGORIES[rng.below(CATEGORIES.len())];
    let topic = rng.pick(&topics);
    let title = format!(
        "{} {} {}",
        capitalize(rng.pick(&ADJECTIVES)),
        topic,
        rng.pick(&DOC_TYPES)
    );
    let summary = format!(
        "This {} {} the {} {} for the {}.",
        rng.pick(&DOC_TYPES),
        rng.pick(&VERBS),
        topic,
        rng.pick(&topics),
        rng.pick(&COMMON)
    );
    let sentences = 3 + rng.below(3);
    let mut full_text = String::new();
    for s in 0..sentences {
        if s > 0 {
            full_text.push(' ');
        }
        let sentence = match rng.below(3) {
            0 => format!(
                "The {} {} {} {} and {}.",
                rng.pick(&COMMON),
                rng.pick(&VERBS),
                rng.pick(&topics),
                rng.pick(&topics),
                rng.pick(&OUTCOMES)
            ),
            1 => format!(
                "Our {} {} {}, which {}.",
                rng.pick(&ADJECTIVES),
                rng.pick(&topics),
                rng.pick(&COMMON),
                rng.pick(&OUTCOMES)
            ),
            _ => format!(
                "{} {} {} {}.",
                capitalize(rng.pick(&topics)),
                rng.pick(&VERBS),
                rng.pick(&COMMON),
                rng.pick(&topics)
            ),
        };
        full_text.push_str(&sentence);
    }
    full_text.push_str(&format!(
        " It is part of project {}.",
        codename(rng.below(CODENAMES))
    ));
    let mut tags = vec![topic];
    for _ in 0..rng.below(3) {
        let t = rng.pick(&topics);
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    json!({
        "id": id(index),
        "title": title,
        "category": category,
        "year": FIRST_YEAR + rng.below(11) as i64,
        "score": (rng.below(1001) as f64) / 1000.0,
        "has_attachment": rng.below(4) == 0,
        "tags": tags,
        "summary": summary,
        "full_text": full_text,
    })
}

/// Documents `0..rows` as JSONL text (one object per line, keys in a fixed order).
pub(crate) fn jsonl(rows: usize) -> String {
    let mut out = String::new();
    for i in 0..rows {
        out.push_str(&document(i).to_string());
        out.push('\n');
    }
    out
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
