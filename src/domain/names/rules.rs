//! The character rules every name follows, users' and rooms' alike:
//! trimmed, NFC, runs of spaces collapsed, bounded, and free of characters
//! that let two names look alike.

use icu_properties::props::{BidiControl, DefaultIgnorableCodePoint, GeneralCategory, GeneralCategoryGroup};
use icu_properties::{CodePointMapData, CodePointSetData};
use unicode_normalization::UnicodeNormalization;

/// NFC can merge up to four characters into one (a letter and three marks),
/// so a name longer than this before normalising is too long after it: it is
/// refused before any work is spent on it.
const NFC_SHRINK: usize = 4;

/// Shared rules for names: trimmed, NFC, non-empty, bounded, runs of spaces
/// collapsed, and free of characters that let two names look alike
/// ([`refusal`]). `too_long` is the refusal for names over `max`, spelled
/// with the number.
pub(super) fn parse_name(raw: &str, max: usize, too_long: &'static str) -> Result<String, &'static str> {
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
pub(super) fn is_letter_or_digit(c: char) -> bool {
    let category = CodePointMapData::<GeneralCategory>::new().get(c);
    GeneralCategoryGroup::Letter.contains(category) || GeneralCategoryGroup::Number.contains(category)
}

#[cfg(test)]
mod tests {
    use crate::domain::RoomName;
    use crate::domain::testing::{refusal_of, user};

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
    fn runs_of_spaces_collapse_to_one() {
        assert_eq!(user("Ana   Lu").as_str(), "Ana Lu");
        assert_eq!(user("Ana   Lu"), user("ana lu"));
        assert_eq!(RoomName::parse("off  topic").unwrap().as_str(), "off topic");
    }
}
