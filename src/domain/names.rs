//! Usernames, room names and message texts, with the rules that make them valid.
//!
//! Names are what people recognise each other by, so two names that *look*
//! the same must not belong to two people. Every name is
//! 1. trimmed, put in Unicode NFC, and its runs of spaces collapsed to one,
//!    so the same visible name is always stored and shown the same way;
//! 2. refused if it holds a character that is invisible, reorders the text
//!    around it, or renders as a blank other than the ordinary space
//!    ([`refusal`]);
//! 3. for users only, given an identity [`Username::key`]: the Unicode TR39
//!    confusable skeleton of its case fold, so `alice`, `ALICE`, `аlice`
//!    (Cyrillic а) and `ａlice` (fullwidth) are one user.

use std::fmt;
use std::hash::{Hash, Hasher};

use caseless::Caseless;
use icu_properties::props::{BidiControl, DefaultIgnorableCodePoint, GeneralCategory, GeneralCategoryGroup};
use icu_properties::{CodePointMapData, CodePointSetData};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use unicode_normalization::UnicodeNormalization;

use super::ValidationError;

/// Longest username, in characters (Unicode scalar values, after NFC).
pub const MAX_USERNAME_CHARS: usize = 32;
/// Longest room name, in characters (after NFC).
pub const MAX_ROOM_CHARS: usize = 64;
/// Longest message text, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;

/// NFC can merge up to four characters into one (a letter and three marks),
/// so a name longer than this before normalising is too long after it: it is
/// refused before any work is spent on it.
const NFC_SHRINK: usize = 4;

/// Shared rules for names: trimmed, NFC, non-empty, bounded, runs of spaces
/// collapsed, and free of characters that let two names look alike
/// ([`refusal`]). `too_long` is the refusal for names over `max`, spelled
/// with the number.
fn parse_name(raw: &str, max: usize, too_long: &'static str) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("must not be empty");
    }
    if trimmed.chars().count() > max * NFC_SHRINK {
        return Err(too_long);
    }
    let mut name = String::with_capacity(trimmed.len());
    for c in trimmed.nfc() {
        if let Some(refused) = refusal(c) {
            return Err(refused);
        }
        // In HTML "a  b" renders as "a b": one space is the name.
        if c == ' ' && name.ends_with(' ') {
            continue;
        }
        name.push(c);
    }
    if name.chars().count() > max {
        return Err(too_long);
    }
    Ok(name)
}

/// Why `c` may not appear in a name, or `None` if it may. Refused:
/// - controls (Cc);
/// - bidirectional controls (Bidi_Control: U+061C, U+200E/F, U+202A..E,
///   U+2066..9), which reorder the text around them;
/// - default-ignorable code points, which render as nothing: zero-width
///   characters, U+00AD soft hyphen, variation selectors (U+FE0F), Hangul
///   fillers (U+3164, U+FFA0), tag characters;
/// - other format characters (Cf), such as the Arabic number signs;
/// - line and paragraph separators (Zl, Zp), and blanks other than the
///   ordinary space: the other spaces (Zs) and U+2800 braille blank, which
///   all look like U+0020 or like nothing;
/// - unassigned (Cn) and private-use (Co) characters: they render as the same
///   box, and a later Unicode version may give them a case or a decomposition,
///   which would change the key of a name already stored.
fn refusal(c: char) -> Option<&'static str> {
    if c == ' ' {
        return None;
    }
    let category = CodePointMapData::<GeneralCategory>::new().get(c);
    if category == GeneralCategory::Control {
        return Some("must not contain control characters");
    }
    if CodePointSetData::new::<BidiControl>().contains(c) {
        return Some("must not contain bidirectional control characters (such as U+202E or U+2066)");
    }
    if CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c) {
        return Some(
            "must not contain invisible characters (such as zero-width characters, soft hyphens, variation selectors or fillers)",
        );
    }
    match category {
        GeneralCategory::Format => Some("must not contain formatting characters"),
        GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
            Some("must not contain line or paragraph separators")
        }
        GeneralCategory::SpaceSeparator => Some("must not contain spaces other than the ordinary space"),
        _ if c == '\u{2800}' => Some("must not contain blank characters (such as U+2800 braille blank)"),
        GeneralCategory::Unassigned | GeneralCategory::PrivateUse | GeneralCategory::Surrogate => {
            Some("must not contain unassigned or private-use characters")
        }
        _ if !unicode_normalization::char::is_public_assigned(c) => {
            Some("must not contain unassigned or private-use characters")
        }
        _ => None,
    }
}

/// A letter (L*) or digit (N*): something that shows. (Default-ignorable
/// letters such as U+3164 Hangul filler never get this far: [`refusal`].)
fn is_letter_or_digit(c: char) -> bool {
    let category = CodePointMapData::<GeneralCategory>::new().get(c);
    GeneralCategoryGroup::Letter.contains(category) || GeneralCategoryGroup::Number.contains(category)
}

/// The identity of a (normalised) username: the TR39 confusable skeleton of
/// its default case fold, case-folded again.
///
/// - The fold first makes `ALICE` and `alice` one name (the skeleton alone
///   keeps case).
/// - `unicode_security::skeleton` is TR39's `NFD(map(NFD(x)))` with
///   default-ignorables dropped: `а` (Cyrillic) and `ａ` (fullwidth) become
///   `a`, `1` becomes `l`, `m` becomes `rn`.
/// - The second fold: some prototypes are capitals (`0` maps to `O`), and
///   `b0b` must meet `bob`.
///
/// Pure and deterministic. Keys are stored (accounts in Redis), so the crates
/// whose tables shape them are pinned in Cargo.toml: if an upgrade changes a
/// key, the Redis store's startup migration moves the accounts concerned
/// (live presence is rebuilt by each instance's resync). Known gap: capital `I` folds to `i` before the
/// skeleton would map it to `l`, so `AIice` (capital i) keeps its own key.
fn identity_key(display: &str) -> String {
    let mut key = skeleton_round(display);
    for _ in 1..MAX_KEY_ROUNDS {
        let next = skeleton_round(&key.nfc().collect::<String>());
        if next == key {
            break;
        }
        key = next;
    }
    key
}

/// Rounds of [`skeleton_round`] at most. A prototype may fold to a letter
/// that has a prototype of its own (Cherokee `Ꮇ` → `M` → `m` → `rn`), so one
/// round is repeated until nothing changes. Then a key, read as a name, has
/// itself as key: look-alikes of look-alikes are one name. Two rounds
/// suffice for every code point.
const MAX_KEY_ROUNDS: usize = 8;

/// Fold, skeleton, fold.
fn skeleton_round(name: &str) -> String {
    let folded: String = name.chars().default_case_fold().collect();
    unicode_security::skeleton(&folded).default_case_fold().collect()
}

/// A user's display name. Identity is [`Username::key`]: case-insensitive
/// and blind to look-alike characters, so nobody can take a name that looks
/// like an online or registered one.
#[derive(Clone)]
pub struct Username {
    /// The name as shown: trimmed, NFC, single spaces.
    display: String,
    /// [`identity_key`] of `display`, computed once.
    key: String,
}

impl Username {
    /// Validates a name typed by a user (surrounding whitespace is dropped).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let display = parse_name(raw, MAX_USERNAME_CHARS, "must be at most 32 characters")
            .map_err(ValidationError::Username)?;
        if !display.chars().any(is_letter_or_digit) {
            return Err(ValidationError::Username("must contain at least one letter or digit"));
        }
        let key = identity_key(&display);
        Ok(Self { display, key })
    }

    /// The name as shown: as the user typed it, in NFC, with surrounding
    /// whitespace dropped and runs of spaces collapsed.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The identity used for uniqueness and lookups everywhere (presence,
    /// `user:<key>` channels, account keys): the name's confusable skeleton
    /// (see the module docs). Not for display.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Orders names for people: by their case fold, as shown (then by key,
    /// so the order is total). [`Ord`] orders by key, which keeps it
    /// consistent with equality but files `mallory` under `rnallory`; lists
    /// shown to users are sorted with this instead.
    pub fn display_order(a: &Self, b: &Self) -> std::cmp::Ordering {
        a.fold().cmp(&b.fold()).then_with(|| a.key.cmp(&b.key))
    }

    /// The name as shown, case folded: what [`Self::display_order`] sorts by
    /// first, and what a search matches.
    pub fn fold(&self) -> String {
        self.display.chars().default_case_fold().collect()
    }

    /// The key names had before the skeleton: the lowercased name.
    /// Accounts registered then were stored under it; the Redis store looks
    /// there for one that could not be moved to [`Username::key`].
    pub fn legacy_key(&self) -> String {
        self.display.to_lowercase()
    }
}

impl PartialEq for Username {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Username {}
impl Hash for Username {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}
impl PartialOrd for Username {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Username {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}
impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}
impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.display, f)
    }
}
impl Serialize for Username {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.display)
    }
}
impl<'de> Deserialize<'de> for Username {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A chat room's name. Rooms are case-sensitive, like socket.io rooms, and
/// have no skeleton; their names follow the same character rules as
/// usernames (NFC, no invisible or blank characters), so two rooms cannot look
/// the same by hiding characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomName(String);

impl RoomName {
    /// Validates a room name (surrounding whitespace is dropped).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        parse_name(raw, MAX_ROOM_CHARS, "must be at most 64 characters")
            .map(Self)
            .map_err(ValidationError::Room)
    }

    /// The room name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for RoomName {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}
impl From<RoomName> for String {
    fn from(room: RoomName) -> Self {
        room.0
    }
}
impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The text of a message: at least one visible character, at most
/// [`MAX_TEXT_CHARS`]. Kept verbatim (newlines included); clients render it as
/// text, never as markup.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text(String);

impl Text {
    /// Validates a message text.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.trim().is_empty() {
            return Err(ValidationError::Text("must not be empty"));
        }
        let chars = raw.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(ValidationError::TextTooLong(chars));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Text {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}
impl From<Text> for String {
    fn from(text: Text) -> Self {
        text.0
    }
}
impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text({} chars)", self.0.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> Username {
        Username::parse(name).unwrap()
    }

    fn refusal_of(name: &str) -> &'static str {
        match Username::parse(name) {
            Err(ValidationError::Username(why)) => why,
            other => panic!("{name:?} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn username_is_trimmed_and_case_insensitive() {
        let a = user("  Alice ");
        assert_eq!(a.as_str(), "Alice");
        assert_eq!(a, user("alice"));
    }

    #[test]
    fn username_limits_are_enforced() {
        assert!(Username::parse("").is_err());
        assert!(Username::parse("   ").is_err());
        assert!(Username::parse(&"x".repeat(MAX_USERNAME_CHARS)).is_ok());
        assert!(Username::parse(&"x".repeat(MAX_USERNAME_CHARS + 1)).is_err());
        assert!(Username::parse("bad\nname").is_err());
        assert!(Username::parse("ali\u{200B}ce").is_err());
        // Characters, not bytes: 32 multi-byte characters are fine.
        assert!(Username::parse(&"é".repeat(MAX_USERNAME_CHARS)).is_ok());
        // Counted after NFC: 32 decomposed é (64 code points) are 32 characters.
        assert!(Username::parse(&"e\u{301}".repeat(MAX_USERNAME_CHARS)).is_ok());
        assert!(Username::parse(&"e\u{301}".repeat(MAX_USERNAME_CHARS + 1)).is_err());
    }

    #[test]
    fn look_alikes_of_alice_share_its_key() {
        let alice = user("alice");
        for look_alike in
            ["\u{430}lice", "\u{FF41}lice", "ALICE", "Alice", "\u{FF21}\u{FF2C}\u{FF29}\u{FF23}\u{FF25}"]
        {
            assert_eq!(user(look_alike).key(), alice.key(), "{look_alike:?}");
            assert_eq!(user(look_alike), alice, "{look_alike:?}");
        }
        // Digits and letter pairs that read alike are one name too.
        assert_eq!(user("bob1").key(), user("BOBL").key());
        assert_eq!(user("b0b").key(), user("bob").key());
        assert_eq!(user("rnallory").key(), user("mallory").key());
        assert_ne!(user("alice").key(), user("alicia").key());
    }

    #[test]
    fn composed_and_decomposed_names_are_one_name_shown_composed() {
        let composed = user("caf\u{E9}");
        let decomposed = user("cafe\u{301}");
        assert_eq!(composed.key(), decomposed.key());
        assert_eq!(decomposed.as_str(), "caf\u{E9}");
        assert_eq!(decomposed.to_string(), "caf\u{E9}");
        assert_eq!(serde_json::to_value(&decomposed).unwrap(), "caf\u{E9}");
        assert_eq!(user("CAFE\u{301}").key(), composed.key());
    }

    #[test]
    fn keys_are_stable_across_releases() {
        // Keys are stored in Redis: a change here moves accounts at startup.
        for (name, key) in [
            ("alice", "alice"),
            ("ALICE", "alice"),
            ("Bob1", "bobl"),
            ("b0b", "bob"),
            ("mallory", "rnallory"),
            ("caf\u{E9}", "cafe\u{301}"),
            ("Stra\u{DF}e", "strasse"),
            ("\u{430}lice", "alice"),
            ("\u{FF41}lice", "alice"),
            ("Ana Lu", "ana lu"),
            ("\u{674E}\u{5C0F}\u{9F8D}", "\u{674E}\u{5C0F}\u{9F8D}"),
        ] {
            assert_eq!(user(name).key(), key, "{name:?}");
        }
    }

    #[test]
    fn look_alikes_through_two_prototypes_share_a_key() {
        // Cherokee Ꮇ's prototype is M, whose fold m has the prototype rn.
        assert_eq!(user("\u{13B7}alice").key(), user("Malice").key());
        assert_eq!(user("\u{13B7}alice").key(), "rnalice");
        // Stigma's prototype σ has the prototype o.
        assert_eq!(user("\u{3DB}k").key(), user("ok").key());
    }

    #[test]
    fn a_key_read_as_a_name_is_its_own_key() {
        for name in [
            "alice",
            "Bob1",
            "mallory",
            "caf\u{E9}",
            "\u{13B7}",
            "\u{3DA}",
            "\u{7E1}",
            "\u{1240}x",
            "Stra\u{DF}e",
        ] {
            let key = user(name).key().to_owned();
            assert_eq!(user(&key).key(), key, "{name:?}");
        }
    }

    /// Every code point, alone and after a letter. Slow (30 s unoptimised):
    /// run it with `--ignored` when upgrading the pinned Unicode crates.
    #[test]
    #[ignore = "exhaustive; run when upgrading unicode-security, caseless or unicode-normalization"]
    fn every_key_read_as_a_name_is_its_own_key() {
        let mut wrong = Vec::new();
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            for name in [c.to_string(), format!("a{c}")] {
                let Ok(named) = Username::parse(&name) else { continue };
                let Ok(again) = Username::parse(named.key()) else { continue };
                if again.key() != named.key() {
                    wrong.push(name);
                }
            }
        }
        assert!(wrong.is_empty(), "{} names, such as {:?}", wrong.len(), &wrong[..wrong.len().min(10)]);
    }

    #[test]
    fn lists_are_ordered_as_shown_ignoring_case() {
        let mut names: Vec<Username> = ["sam", "Mallory", "quinn", "bob1", "Bob", "alice"].map(user).to_vec();
        names.sort_by(Username::display_order);
        let shown: Vec<&str> = names.iter().map(Username::as_str).collect();
        assert_eq!(shown, ["alice", "Bob", "bob1", "Mallory", "quinn", "sam"]);
    }

    #[test]
    fn legacy_key_is_the_lowercased_name() {
        assert_eq!(user("Bob1").legacy_key(), "bob1");
        assert_eq!(user("cafe\u{301}").legacy_key(), "caf\u{E9}");
    }

    #[test]
    fn bidirectional_controls_are_refused() {
        for name in [
            "alice\u{2066}",
            "\u{202E}ecila",
            "ali\u{2069}ce",
            "ali\u{200E}ce",
            "ali\u{200F}ce",
            "ali\u{61C}ce",
        ] {
            assert!(refusal_of(name).contains("bidirectional"), "{name:?}");
        }
    }

    #[test]
    fn invisible_characters_are_refused() {
        for name in [
            "ali\u{AD}ce",
            "alice\u{FE0F}",
            "ali\u{FE00}ce",
            "ali\u{200B}ce",
            "ali\u{200D}ce",
            "ali\u{2060}ce",
            "\u{FEFF}alice",
            "alice\u{E0041}",
            "\u{3164}",
            "alice\u{3164}",
            "\u{FFA0}",
            "ali\u{34F}ce",
        ] {
            assert!(refusal_of(name).contains("invisible"), "{name:?}");
        }
    }

    #[test]
    fn formatting_characters_are_refused() {
        assert!(refusal_of("\u{600}12").contains("formatting"));
        assert!(refusal_of("ali\u{FFF9}ce").contains("formatting"));
    }

    #[test]
    fn separators_and_blanks_other_than_the_space_are_refused() {
        assert!(refusal_of("ali\u{2028}ce").contains("separators"));
        assert!(refusal_of("ali\u{2029}ce").contains("separators"));
        for name in ["ali\u{A0}ce", "ali\u{3000}ce", "ali\u{2002}ce", "ali\u{202F}ce"] {
            assert!(refusal_of(name).contains("spaces other than"), "{name:?}");
        }
        for name in ["\u{2800}", "\u{2800}alice", "alice\u{2800}"] {
            assert!(refusal_of(name).contains("blank"), "{name:?}");
        }
        // Trailing separators are whitespace: trimmed like spaces.
        assert_eq!(user("alice\u{2028}").as_str(), "alice");
    }

    #[test]
    fn unassigned_and_private_use_characters_are_refused() {
        assert!(refusal_of("ali\u{E000}ce").contains("private-use"));
        assert!(refusal_of("ali\u{FFFF}ce").contains("unassigned"));
        assert!(refusal_of("ali\u{10FFFD}ce").contains("unassigned"));
    }

    #[test]
    fn names_need_a_letter_or_digit() {
        for name in ["!!!", "\u{1F642}", "...", "\u{2014}", "\u{301}"] {
            assert_eq!(refusal_of(name), "must contain at least one letter or digit", "{name:?}");
        }
        assert!(Username::parse("7").is_ok());
        assert!(Username::parse("\u{2163}").is_ok(), "Roman numeral four is a number (Nl)");
    }

    #[test]
    fn ordinary_names_are_accepted_as_typed() {
        for name in [
            "alice",
            "Bob 2",
            "user_42",
            "O'Brien",
            "Jos\u{E9}",
            "Zo\u{EB} Kov\u{E1}\u{159}",
            "\u{674E}\u{5C0F}\u{9F8D}",
            "\u{5C71}\u{7530}\u{592A}\u{90CE}",
            "\u{C9C0}\u{BBFC}",
            "\u{395}\u{3BB}\u{3AD}\u{3BD}\u{3B7}",
            "\u{414}\u{43C}\u{438}\u{442}\u{440}\u{438}\u{439}",
            "\u{645}\u{62D}\u{645}\u{62F}",
            "\u{5E9}\u{5DC}\u{5D5}\u{5DD}",
            "\u{928}\u{92E}\u{938}\u{94D}\u{924}\u{947}",
            "alice \u{1F642}",
        ] {
            assert_eq!(user(name).as_str(), name, "{name:?}");
        }
    }

    #[test]
    fn runs_of_spaces_collapse_to_one() {
        assert_eq!(user("Ana   Lu").as_str(), "Ana Lu");
        assert_eq!(user("Ana   Lu"), user("ana lu"));
        assert_eq!(RoomName::parse("off  topic").unwrap().as_str(), "off topic");
    }

    #[test]
    fn room_name_limits_are_enforced() {
        assert!(RoomName::parse("general").is_ok());
        assert!(RoomName::parse(&"r".repeat(MAX_ROOM_CHARS + 1)).is_err());
        assert!(RoomName::parse("\t").is_err());
        assert_ne!(RoomName::parse("General").unwrap(), RoomName::parse("general").unwrap());
    }

    #[test]
    fn room_names_follow_the_character_rules_without_a_skeleton() {
        for name in
            ["gen\u{AD}eral", "general\u{2066}", "general\u{FE0F}", "gen\u{2028}eral", "\u{2800}", "\u{3164}"]
        {
            assert!(
                matches!(RoomName::parse(name), Err(ValidationError::Room(_))),
                "{name:?} should be refused"
            );
        }
        assert_eq!(RoomName::parse("cafe\u{301}").unwrap(), RoomName::parse("caf\u{E9}").unwrap());
        assert_ne!(RoomName::parse("\u{430}bc").unwrap(), RoomName::parse("abc").unwrap());
        assert!(RoomName::parse("\u{1F3AE}").is_ok(), "rooms need no letter");
    }

    #[test]
    fn text_limits_are_enforced() {
        assert!(Text::parse(" \n ").is_err());
        assert!(Text::parse(&"a".repeat(MAX_TEXT_CHARS)).is_ok());
        assert_eq!(
            Text::parse(&"a".repeat(MAX_TEXT_CHARS + 1)),
            Err(ValidationError::TextTooLong(MAX_TEXT_CHARS + 1))
        );
        assert_eq!(
            Text::parse(&"é".repeat(100_000)).unwrap_err().to_string(),
            "message text must be at most 4000 characters (this one has 100000)",
            "characters, not bytes"
        );
        assert_eq!(Text::parse(" two\nlines ").unwrap().as_str(), " two\nlines ");
    }
}
