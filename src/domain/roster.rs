//! The online list in the order people read it, as both stores index it so
//! that a page of it, or the names starting with a few letters, costs the
//! size of the page and not the number of users online.
//!
//! Each online user is one [`entry`]: `fold \0 key \0 display`, where `fold`
//! is the display name's case fold. Byte order of entries is
//! [`Username::display_order`] (`\0` sorts below every character a name may
//! hold), so a sorted set in Redis (`ZRANGEBYLEX`, beside a hash of each
//! user's entry for logout to remove) and a `BTreeSet` in memory page the
//! same way through the bounds of a [`RosterQuery`].

use unicode_normalization::UnicodeNormalization;

use super::{MAX_USERNAME_CHARS, Username, ValidationError};

/// Above every character a name may hold (names refuse private-use
/// characters, and all of plane 16 is private use): appended to a prefix, it
/// bounds every entry starting with that prefix.
const ABOVE_NAMES: char = '\u{10FFFF}';

/// The most names one page may ask for.
pub const MAX_ROSTER_PAGE: usize = 500;

/// Names a page holds when the request does not say.
pub const DEFAULT_ROSTER_PAGE: usize = 100;

/// `user`'s entry in the roster index.
pub fn entry(user: &Username) -> String {
    format!("{}\0{}\0{}", user.fold(), user.key(), user.as_str())
}

/// The display name held in an [`entry`].
pub fn display_of(entry: &str) -> &str {
    entry.rsplit('\0').next().unwrap_or_default()
}

/// The user an [`entry`] holds.
pub fn user_of(entry: &str) -> Result<Username, ValidationError> {
    Username::parse(display_of(entry))
}

/// Which page of the online list to read: the names after `after` (in
/// display order), of those starting with `prefix` (ignoring case), at most
/// `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterQuery {
    after: Option<Username>,
    /// Already folded.
    prefix: Option<String>,
    limit: usize,
}

impl RosterQuery {
    /// The first [`DEFAULT_ROSTER_PAGE`] names.
    pub fn first_page() -> Self {
        Self { after: None, prefix: None, limit: DEFAULT_ROSTER_PAGE }
    }

    /// The first `limit` names (1 to [`MAX_ROSTER_PAGE`]).
    pub fn first(limit: usize) -> Self {
        Self { limit: limit.clamp(1, MAX_ROSTER_PAGE), ..Self::first_page() }
    }

    /// Validates a request from a client: `after` is a name from an earlier
    /// page, `prefix` what the user typed in a search box (1 to
    /// [`MAX_USERNAME_CHARS`] characters; surrounding spaces at its start
    /// are dropped, and an empty one means no filter).
    pub fn parse(
        after: Option<&str>,
        prefix: Option<&str>,
        limit: Option<u64>,
    ) -> Result<Self, ValidationError> {
        let after = after
            .map(Username::parse)
            .transpose()
            .map_err(|_| ValidationError::Roster("after must be a name from an earlier page"))?;
        let prefix = prefix.map(fold_prefix).transpose()?.filter(|prefix| !prefix.is_empty());
        let limit = match limit {
            None => DEFAULT_ROSTER_PAGE,
            Some(limit @ 1..) if limit <= MAX_ROSTER_PAGE as u64 => limit as usize,
            Some(_) => return Err(ValidationError::Roster("limit must be between 1 and 500")),
        };
        Ok(Self { after, prefix, limit })
    }

    /// The most names the page holds.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The lowest entry the page may hold (inclusive), if bounded below.
    pub fn start(&self) -> Option<String> {
        // Past every entry of `after`'s fold and key, whatever its spelling:
        // key characters are never below U+0001.
        let after = self.after.as_ref().map(|user| format!("{}\0{}\u{1}", user.fold(), user.key()));
        match (after, self.prefix.clone()) {
            (Some(after), Some(prefix)) => Some(after.max(prefix)),
            (after, prefix) => after.or(prefix),
        }
    }

    /// The entry above every one the page may hold (exclusive), if bounded.
    pub fn end(&self) -> Option<String> {
        self.prefix.as_ref().map(|prefix| format!("{prefix}{ABOVE_NAMES}"))
    }

    /// True if `entry` is within [`Self::start`] and [`Self::end`].
    pub fn contains(&self, entry: &str) -> bool {
        self.start().is_none_or(|start| entry >= start.as_str())
            && self.end().is_none_or(|end| entry < end.as_str())
    }
}

/// A search as typed, in the form entries start with: leading spaces
/// dropped, NFC, runs of spaces as one, case folded.
fn fold_prefix(raw: &str) -> Result<String, ValidationError> {
    use caseless::Caseless;
    let raw = raw.trim_start();
    if raw.chars().count() > MAX_USERNAME_CHARS {
        return Err(ValidationError::Roster("search must be at most 32 characters"));
    }
    if raw.chars().any(char::is_control) {
        return Err(ValidationError::Roster("search must not contain control characters"));
    }
    let mut nfc = String::with_capacity(raw.len());
    for c in raw.nfc() {
        if !(c == ' ' && nfc.ends_with(' ')) {
            nfc.push(c);
        }
    }
    Ok(nfc.chars().default_case_fold().collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::testing::user;

    /// The names a query pages out of `names`, as a store would.
    fn page(names: &[&str], query: &RosterQuery) -> Vec<String> {
        let index: BTreeSet<String> = names.iter().map(|name| entry(&user(name))).collect();
        index
            .iter()
            .filter(|entry| query.contains(entry))
            .take(query.limit())
            .map(|entry| display_of(entry).to_owned())
            .collect()
    }

    const NAMES: [&str; 7] = ["bob", "Alice", "mallory", "alicia", "Zed", "ál", "al"];

    #[test]
    fn entries_sort_in_display_order() {
        let mut by_entry: Vec<Username> = NAMES.iter().map(|name| user(name)).collect();
        by_entry.sort_by_key(entry);
        let mut by_display = by_entry.clone();
        by_display.sort_by(Username::display_order);
        assert_eq!(by_entry, by_display);
    }

    #[test]
    fn pages_follow_each_other_without_gaps_or_repeats() {
        let mut seen = Vec::new();
        let mut query = RosterQuery::parse(None, None, Some(2)).unwrap();
        loop {
            let names = page(&NAMES, &query);
            if names.is_empty() {
                break;
            }
            seen.extend(names.clone());
            query = RosterQuery::parse(names.last().map(String::as_str), None, Some(2)).unwrap();
        }
        assert_eq!(seen, ["al", "Alice", "alicia", "bob", "mallory", "Zed", "ál"]);
    }

    #[test]
    fn a_cursor_spelled_differently_still_moves_on() {
        let query = RosterQuery::parse(Some("ALICE"), None, None).unwrap();
        assert_eq!(page(&NAMES, &query), ["alicia", "bob", "mallory", "Zed", "ál"]);
    }

    #[test]
    fn a_prefix_matches_ignoring_case_and_pages_within_its_matches() {
        let query = RosterQuery::parse(None, Some("  ALI"), None).unwrap();
        assert_eq!(page(&NAMES, &query), ["Alice", "alicia"]);
        let query = RosterQuery::parse(Some("Alice"), Some("ali"), None).unwrap();
        assert_eq!(page(&NAMES, &query), ["alicia"]);
        let query = RosterQuery::parse(Some("bob"), Some("ali"), None).unwrap();
        assert!(page(&NAMES, &query).is_empty());
        let query = RosterQuery::parse(None, Some("m"), None).unwrap();
        assert_eq!(page(&NAMES, &query), ["mallory"], "a prefix reads the name as shown, not its key");
    }

    #[test]
    fn an_empty_search_lists_everyone() {
        assert_eq!(RosterQuery::parse(None, Some(" "), None).unwrap(), RosterQuery::first_page());
    }

    #[test]
    fn bad_requests_are_refused() {
        assert!(RosterQuery::parse(None, None, Some(0)).is_err());
        assert!(RosterQuery::parse(None, None, Some(MAX_ROSTER_PAGE as u64 + 1)).is_err());
        assert!(RosterQuery::parse(None, Some(&"a".repeat(33)), None).is_err());
        assert!(RosterQuery::parse(None, Some("a\u{7}"), None).is_err());
        assert!(RosterQuery::parse(Some(""), None, None).is_err());
    }
}
