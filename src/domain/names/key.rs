//! What makes two usernames one: the identity key, a confusable skeleton.

use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;

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
pub(super) fn identity_key(display: &str) -> String {
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

#[cfg(test)]
mod tests {
    use crate::domain::Username;
    use crate::domain::testing::user;

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
}
