//! Path patterns with Python `fnmatch` semantics, matched with [`globset`].
//!
//! loom-ai 0.9.0 matched workspace paths with `fnmatch.fnmatch`; Loom keeps that meaning
//! for workspace resource patterns and `.siloignore` lines, so patterns written for the
//! original keep working:
//!
//! * `*` matches any run of characters, **including `/`** (`docs/*` matches
//!   `docs/a/b.md`; `*.md` matches `notes/x.md`); consecutive stars mean the same as one;
//! * with [`DoubleStar::Directories`], `**/` at the start or right after `/` matches zero
//!   or more whole directories (`docs/**/*.md` matches `docs/a.md` and
//!   `docs/x/y/a.md`); `**` anywhere else still means `*`;
//! * `?` matches one character;
//! * `[seq]` matches one character in `seq` (ranges such as `a-z` allowed), `[!seq]` one
//!   character not in it; a `]` right after `[` or `[!` is part of the set; a `[` without
//!   a closing `]` is an ordinary character;
//! * everything else (`{`, `}`, `\` and `^` included) matches itself, case-sensitively on
//!   every platform.
//!
//! # Two engines
//!
//! A pattern made of literal text and stars is translated to `globset` syntax (literals
//! escaped, `literal_separator(false)` so that `*` crosses `/`) and all such patterns of
//! a [`GlobList`] are matched together by one [`globset::GlobSet`].
//!
//! A pattern with `?` or `[` keeps a small hand-written matcher instead: globset matches
//! bytes (its regex runs with Unicode off), so its `?` and `[…]` take one *byte* — `?`
//! would not match `é`, nor `[é]` match `é` — where fnmatch takes one character. globset
//! also reads `[^…]` as a negated set and rejects reversed ranges such as `[z-a]`, which
//! fnmatch reads as an ordinary `^` and an empty range. The hand-written matcher runs a
//! dynamic programme over (pattern, text) positions, so no pattern can make it take
//! exponential time.

use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};

/// What a run of two or more stars means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoubleStar {
    /// The same as `*`, as in Python's `fnmatch` (`.siloignore` lines).
    Star,
    /// `**/` at the start or after `/` matches zero or more whole directories; elsewhere
    /// the same as `*` (workspace resource patterns).
    Directories,
}

/// A list of patterns compiled once; a text matches when any pattern matches all of it.
#[derive(Debug, Clone)]
pub struct GlobList {
    /// The patterns of literal text and stars, compiled together.
    set: GlobSet,
    /// The patterns with `?` or `[`, matched character by character.
    by_char: Vec<CharGlob>,
}

impl GlobList {
    /// Compiles `patterns`; every string is a valid pattern.
    pub fn new<I, S>(patterns: I, double_star: DoubleStar) -> GlobList
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut builder = GlobSetBuilder::new();
        let mut in_set = Vec::new();
        let mut by_char = Vec::new();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            match to_globset(pattern, double_star) {
                Some(glob) => {
                    builder.add(glob);
                    in_set.push(pattern.to_owned());
                }
                None => by_char.push(CharGlob::new(pattern, double_star)),
            }
        }
        let set = builder.build().unwrap_or_else(|_| {
            // Not expected for escaped literals and stars; the hand-written matcher takes
            // every pattern, so nothing is lost.
            by_char.extend(in_set.iter().map(|p| CharGlob::new(p, double_star)));
            GlobSet::empty()
        });
        GlobList { set, by_char }
    }

    /// Whether the list has no pattern (and so matches nothing).
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.by_char.is_empty()
    }

    /// Whether some pattern matches the whole of `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.set.is_match_candidate(&Candidate::from_bytes(text))
            || self.by_char.iter().any(|glob| glob.is_match(text))
    }
}

/// `pattern` in globset syntax, or `None` when it has `?` or `[` (see the module docs).
fn to_globset(pattern: &str, double_star: DoubleStar) -> Option<globset::Glob> {
    if pattern.contains(['?', '[']) {
        return None;
    }
    let mut translated = String::with_capacity(pattern.len() + 8);
    let mut rest = pattern;
    let mut at_segment_start = true;
    while let Some(star) = rest.find('*') {
        let literal = &rest[..star];
        if !literal.is_empty() {
            // `\` is the only character fnmatch reads literally that `escape` leaves alone.
            translated.push_str(&globset::escape(literal).replace('\\', "[\\]"));
            at_segment_start = literal.ends_with('/');
        }
        let stars = &rest[star..];
        let after = stars.trim_start_matches('*');
        let run = stars.len() - after.len();
        rest = after;
        if double_star == DoubleStar::Directories
            && run >= 2
            && at_segment_start
            && rest.starts_with('/')
        {
            translated.push_str("**/");
            rest = &rest[1..];
        } else {
            translated.push('*');
            at_segment_start = false;
        }
    }
    translated.push_str(&globset::escape(rest).replace('\\', "[\\]"));
    GlobBuilder::new(&translated)
        .literal_separator(false)
        .case_insensitive(false)
        .build()
        .ok()
}

/// One element of a pattern the hand-written matcher parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// `*`: any run of characters.
    Star,
    /// `**/` at the start or after `/`: nothing, or any run of characters ending in `/`.
    DirStar,
    /// `?`: one character.
    Any,
    /// A character that matches itself.
    Literal(char),
    /// `[…]`: one character in (or, negated, not in) the inclusive ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    /// Whether this single-character token matches `c` (never called for the stars).
    fn matches_char(&self, c: char) -> bool {
        match self {
            Token::Star | Token::DirStar => false,
            Token::Any => true,
            Token::Literal(l) => *l == c,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

/// A pattern for the hand-written, character-by-character matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CharGlob {
    tokens: Vec<Token>,
}

impl CharGlob {
    /// Compiles `pattern`; every string is a valid pattern.
    fn new(pattern: &str, double_star: DoubleStar) -> CharGlob {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::with_capacity(chars.len());
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    let run = chars[i..].iter().take_while(|&&c| c == '*').count();
                    let at_segment_start = i == 0 || chars[i - 1] == '/';
                    if double_star == DoubleStar::Directories
                        && run >= 2
                        && at_segment_start
                        && chars.get(i + run) == Some(&'/')
                    {
                        tokens.push(Token::DirStar);
                        i += run + 1;
                    } else {
                        // Consecutive stars mean the same as one.
                        if tokens.last() != Some(&Token::Star) {
                            tokens.push(Token::Star);
                        }
                        i += run;
                    }
                }
                '?' => {
                    tokens.push(Token::Any);
                    i += 1;
                }
                '[' => match parse_class(&chars, i + 1) {
                    Some((token, next)) => {
                        tokens.push(token);
                        i = next;
                    }
                    None => {
                        tokens.push(Token::Literal('['));
                        i += 1;
                    }
                },
                c => {
                    tokens.push(Token::Literal(c));
                    i += 1;
                }
            }
        }
        CharGlob { tokens }
    }

    /// Whether the whole of `text` matches.
    fn is_match(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let n = text.len();
        // `next[j]`: whether the tokens after the current one match `text[j..]`.
        let mut next = vec![false; n + 1];
        next[n] = true;
        let mut current = vec![false; n + 1];
        for token in self.tokens.iter().rev() {
            match token {
                Token::Star => {
                    current[n] = next[n];
                    for j in (0..n).rev() {
                        current[j] = next[j] || current[j + 1];
                    }
                }
                Token::DirStar => {
                    // `ends_dir`: some run `text[j..k]` ending in `/` leaves a match.
                    let mut ends_dir = false;
                    current[n] = next[n];
                    for j in (0..n).rev() {
                        ends_dir = ends_dir || (text[j] == '/' && next[j + 1]);
                        current[j] = next[j] || ends_dir;
                    }
                }
                single => {
                    current[n] = false;
                    for j in (0..n).rev() {
                        current[j] = single.matches_char(text[j]) && next[j + 1];
                    }
                }
            }
            std::mem::swap(&mut current, &mut next);
        }
        next[0]
    }
}

/// Parses a set whose body starts at `start` (just after `[`); returns it and the index
/// after its closing `]`, or `None` if it is never closed.
fn parse_class(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut i = start;
    let negated = chars.get(i) == Some(&'!');
    if negated {
        i += 1;
    }
    let body_start = i;
    // A `]` first in the set is a member, not the end.
    if chars.get(i) == Some(&']') {
        i += 1;
    }
    while chars.get(i)? != &']' {
        i += 1;
    }
    let body = &chars[body_start..i];
    let mut ranges = Vec::new();
    let mut j = 0;
    while j < body.len() {
        if j + 2 < body.len() && body[j + 1] == '-' {
            ranges.push((body[j], body[j + 2]));
            j += 3;
        } else {
            ranges.push((body[j], body[j]));
            j += 1;
        }
    }
    Some((Token::Class { negated, ranges }, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `pattern` against `text` through [`GlobList`] and through the hand-written
    /// matcher, so that both engines agree on the patterns that go to globset.
    #[track_caller]
    fn check_with(double_star: DoubleStar, pattern: &str, text: &str, expected: bool) {
        assert_eq!(
            to_globset(pattern, double_star).is_some(),
            !pattern.contains(['?', '[']),
            "pattern {pattern:?} goes to globset exactly when it has no `?` or `[`"
        );
        assert_eq!(
            GlobList::new([pattern], double_star).is_match(text),
            expected,
            "pattern {pattern:?} against {text:?} ({double_star:?})"
        );
        assert_eq!(
            CharGlob::new(pattern, double_star).is_match(text),
            expected,
            "hand-written matcher: pattern {pattern:?} against {text:?} ({double_star:?})"
        );
    }

    /// Workspace resource patterns: `**/` is zero or more directories.
    #[track_caller]
    fn check(pattern: &str, text: &str, expected: bool) {
        check_with(DoubleStar::Directories, pattern, text, expected);
    }

    /// `.siloignore` lines: `fnmatch.fnmatch(text, pattern)`.
    #[track_caller]
    fn fnmatch(pattern: &str, text: &str, expected: bool) {
        check_with(DoubleStar::Star, pattern, text, expected);
    }

    #[test]
    fn star_matches_any_run_including_slashes() {
        check("*.md", "a.md", true);
        check("*.md", "docs/a.md", true);
        check("*.md", "a.mdx", false);
        check("docs/*", "docs/a/b.md", true);
        check("docs/*", "doc/a", false);
        check("*", "", true);
        check("a***b", "axyb", true);

        fnmatch("*.log", "debug.log", true);
        fnmatch("*.log", "logs/deep/debug.log", true);
        fnmatch("*.log", "debug.md", false);
        fnmatch("drafts/*", "drafts/wip.md", true);
        fnmatch("drafts/*", "drafts/a/b.md", true);
        fnmatch("drafts/*", "other/drafts/x.md", false);
        fnmatch("*", "", true);
        fnmatch("a**b", "axxb", true);
        fnmatch("*a*b*", "xxaxxbxx", true);
        fnmatch("*a*b", "xxaxxbxxc", false);
        fnmatch("*", "line\nbreak", true);
    }

    #[test]
    fn double_star_slash_matches_zero_or_more_directories() {
        check("docs/**/*.md", "docs/a.md", true);
        check("docs/**/*.md", "docs/x/y/a.md", true);
        check("docs/**/*.md", "other/a.md", false);
        check("**/a.md", "a.md", true);
        check("**/a.md", "x/a.md", true);
        check("**/a.md", "xa.md", false);
        check("x**/a", "xyz/a", true);
        check("**", "any/thing", true);
        check("***/a.md", "a.md", true);
        check("a/**/**/b", "a/b", true);
        check("a/**/**/b", "a/x/y/b", true);
        check("/**/a", "/a", true);
        check("docs/**", "docs/x/y", true);
    }

    #[test]
    fn double_star_is_a_star_in_fnmatch() {
        fnmatch("**/a.md", "a.md", false);
        fnmatch("**/a.md", "x/y/a.md", true);
        fnmatch("docs/**/*.md", "docs/a.md", false);
        fnmatch("docs/**/*.md", "docs/x/a.md", true);
    }

    #[test]
    fn question_mark_and_classes() {
        check("?.txt", "a.txt", true);
        check("?.txt", "ab.txt", false);
        check("[ab].txt", "b.txt", true);
        check("[!ab].txt", "b.txt", false);
        check("[!ab].txt", "c.txt", true);
        check("[a-c]x", "bx", true);
        check("[]]", "]", true);
        check("[", "[", true);
        check("a[", "a[", true);
    }

    #[test]
    fn question_mark_matches_one_character() {
        fnmatch("v?.md", "v1.md", true);
        fnmatch("v?.md", "v10.md", false);
        fnmatch("?", "", false);
        fnmatch("?", "س", true);
        check("?.md", "é.md", true);
    }

    #[test]
    fn classes_ranges_and_negation() {
        fnmatch("[abc].md", "b.md", true);
        fnmatch("[abc].md", "d.md", false);
        fnmatch("[a-c]x", "bx", true);
        fnmatch("[!a-c]x", "bx", false);
        fnmatch("[!a-c]x", "dx", true);
        fnmatch("[]]", "]", true);
        fnmatch("[!]]", "a", true);
        fnmatch("[a-]", "-", true);
        fnmatch("[", "[", true);
        fnmatch("[abc", "[abc", true);
        fnmatch("x[", "x[", true);
        fnmatch("[é]", "é", true);
        fnmatch("[!a]", "é", true);
        fnmatch("[^a]", "^", true);
        fnmatch("[^a]", "b", false);
        fnmatch("[z-a]", "m", false);
        fnmatch("[!z-a]", "m", true);
    }

    #[test]
    fn literals_are_case_sensitive_and_whole() {
        check("README.md", "readme.md", false);
        check("README.md", "README.md", true);

        fnmatch("secret.md", "secret.md", true);
        fnmatch("secret.md", "dir/secret.md", false);
        fnmatch("secret.md", "Secret.md", false);
        fnmatch("a\\b", "a\\b", true);
        fnmatch("a\\*", "a\\x", true);
        fnmatch("a\\*", "a*", false);
    }

    #[test]
    fn globset_syntax_beyond_fnmatch_is_literal() {
        fnmatch("{a,b}.md", "{a,b}.md", true);
        fnmatch("{a,b}.md", "a.md", false);
        fnmatch("a}b", "a}b", true);
        fnmatch("]", "]", true);
        fnmatch("*,*", "a,b", true);
        check("é*.md", "éa.md", true);
        check("*é", "aé", true);
    }

    #[test]
    fn lists_match_when_any_pattern_does() {
        let list = GlobList::new(["*.md", "v?.txt", "[x]"], DoubleStar::Directories);
        assert!(list.is_match("a/b.md"));
        assert!(list.is_match("v1.txt"));
        assert!(list.is_match("x"));
        assert!(!list.is_match("y"));
        assert!(!list.is_empty());
        let empty = GlobList::new(Vec::<String>::new(), DoubleStar::Star);
        assert!(empty.is_empty());
        assert!(!empty.is_match(""));
    }
}
