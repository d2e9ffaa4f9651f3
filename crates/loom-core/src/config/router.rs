//! Router rules: tier overrides and per-tier rate limits (`router_rules.yaml`).
//!
//! The format is loom-ai 0.9.0's (mesh spec §5.1). Both rate-limit parameters are
//! honoured by the Rust router (B11): `max_concurrent` is the bucket size and the
//! dispatch rate per minute, `tokens_per_minute` an optional budget of estimated tokens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::ConfigErrors;
use super::yaml::{Decoder, Node, child, parse_document, read_source};
use crate::message::ModelTier;
use crate::name::WorkerName;

/// Bucket size when a tier's limit omits `max_concurrent`.
pub const DEFAULT_MAX_CONCURRENT: u32 = 10;

/// Validated router rules.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RouterRules {
    /// Worker type → the tier its tasks are routed to (and rewritten to), whatever they ask.
    pub tier_overrides: BTreeMap<WorkerName, ModelTier>,
    /// Tier → its limit; tiers without one are unlimited.
    pub rate_limits: BTreeMap<ModelTier, RateLimit>,
    /// The file these rules were read from (`None` for the built-in empty rules).
    pub source: Option<PathBuf>,
}

/// A token-bucket limit for one tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Bucket size, and dispatches refilled per minute.
    pub max_concurrent: u32,
    /// Optional budget of estimated tokens per minute.
    pub tokens_per_minute: Option<f64>,
}

/// Loads and validates router rules at `path`, reporting every error at once.
pub fn load_router_rules(path: &Path) -> Result<RouterRules, ConfigErrors> {
    let source = read_source(path)?;
    let root = parse_document(path, &source)?;
    let mut d = Decoder::new(path);
    let rules = decode_router_rules(&mut d, &root);
    d.finish(rules)
}

pub(crate) fn decode_router_rules(d: &mut Decoder, root: &Node<'_>) -> Option<RouterRules> {
    let mut m = d.map(root, "")?;
    let tier_overrides = m.optional(d, "tier_overrides", |d, n, p| {
        let mut om = d.map(n, p)?;
        let mut out = BTreeMap::new();
        for (worker, key, value) in om.remaining() {
            let vp = child(p, worker);
            let name = match WorkerName::try_from(worker) {
                Ok(name) => Some(name),
                Err(e) => {
                    d.error(key, &vp, e.to_string());
                    None
                }
            };
            let tier = d.parsed::<ModelTier>(value, &vp);
            if let (Some(name), Some(tier)) = (name, tier) {
                out.insert(name, tier);
            }
        }
        om.finish(d);
        Some(out)
    });
    let rate_limits = m.optional(d, "rate_limits", |d, n, p| {
        let mut lm = d.map(n, p)?;
        let mut out = BTreeMap::new();
        for (tier, key, value) in lm.remaining() {
            let tp = child(p, tier);
            let parsed = match tier.parse::<ModelTier>() {
                Ok(t) => Some(t),
                Err(e) => {
                    d.error(key, &tp, e.to_string());
                    None
                }
            };
            let limit = rate_limit(d, value, &tp);
            if let (Some(t), Some(l)) = (parsed, limit) {
                out.insert(t, l);
            }
        }
        lm.finish(d);
        Some(out)
    });
    m.finish(d);
    Some(RouterRules {
        tier_overrides: tier_overrides.unwrap_or_default(),
        rate_limits: rate_limits.unwrap_or_default(),
        source: Some(d.file().to_owned()),
    })
}

fn rate_limit(d: &mut Decoder, node: &Node<'_>, path: &str) -> Option<RateLimit> {
    let mut m = d.map(node, path)?;
    let max_concurrent = m.optional(d, "max_concurrent", |d, n, p| d.u32_min(n, p, 1));
    let bad_max = m.get("max_concurrent").is_some() && max_concurrent.is_none();
    let tokens_per_minute = m.optional(d, "tokens_per_minute", Decoder::positive_number);
    m.finish(d);
    (!bad_max).then_some(RateLimit {
        max_concurrent: max_concurrent.unwrap_or(DEFAULT_MAX_CONCURRENT),
        tokens_per_minute,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(src: &str) -> Result<RouterRules, ConfigErrors> {
        let file = Path::new("router_rules.yaml");
        let root = parse_document(file, src)?;
        let mut d = Decoder::new(file);
        let r = decode_router_rules(&mut d, &root);
        d.finish(r)
    }

    #[test]
    fn loads_the_spec_example() {
        let r = load(
            "tier_overrides:\n  summarizer: local\n  extractor: standard\nrate_limits:\n\
             \x20 local:    {max_concurrent: 4,  tokens_per_minute: 100000}\n  frontier: {tokens_per_minute: 5e4}\n",
        )
        .expect("valid");
        assert_eq!(r.tier_overrides.len(), 2);
        assert_eq!(
            r.rate_limits[&ModelTier::Local],
            RateLimit {
                max_concurrent: 4,
                tokens_per_minute: Some(100_000.0)
            }
        );
        assert_eq!(
            r.rate_limits[&ModelTier::Frontier].max_concurrent,
            DEFAULT_MAX_CONCURRENT
        );
    }

    #[test]
    fn rejects_bad_tiers_names_and_numbers_all_at_once() {
        let errs = load(
            "tier_overrides:\n  summarizer: fast\n  Bad.Name: local\nrate_limits:\n  turbo: {max_concurrent: 1}\n\
             \x20 local: {max_concurrent: true, tokens_per_minute: 0, burst: 3}\n",
        )
        .expect_err("invalid");
        let text: Vec<String> = errs.errors().iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 6, "{text:#?}");
        assert!(text[0].contains("tier_overrides.summarizer: unknown tier 'fast'"));
        assert!(text[1].contains("tier_overrides.Bad.Name: name 'Bad.Name' is not valid"));
        assert!(text[2].contains("rate_limits.turbo: unknown tier 'turbo'"));
        assert!(
            text[3]
                .contains("rate_limits.local.max_concurrent: expected an integer, found a boolean")
        );
        assert!(
            text[4]
                .contains("rate_limits.local.tokens_per_minute: must be a number greater than 0")
        );
        assert!(text[5].contains("rate_limits.local.burst: unknown key 'burst'"));
    }
}
