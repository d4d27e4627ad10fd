//! Property tests (proptest) of what parses or transforms client and stored strings: keyword
//! extraction and search terms, the table's key encodings, and cursors. Each property holds
//! for every generated input (256 cases per property by default; `PROPTEST_CASES` raises it).

use brain2::adapters::dynamodb::keys::{
    deletion_sort_key, edge_sort_key, parse_deletion_sort_key, parse_edge_sort_key, parse_time_sort_key, time_sort_key,
};
use brain2::domain::keywords::{MAX_KEYWORDS_PER_NODE, MAX_WORD_CHARS};
use brain2::domain::{KeywordExtractor, NodeId, UserId};
use brain2::http::cursor::{CursorKey, CursorKind};
use brain2::ports::ListCursor;
use proptest::prelude::*;
use unicode_segmentation::UnicodeSegmentation;

/// Times that the keys' 13 zero-padded digits hold: 1970 to the year 2286.
const MAX_KEY_MILLIS: i64 = 9_999_999_999_999;

fn extractor() -> &'static KeywordExtractor {
    static EXTRACTOR: std::sync::OnceLock<KeywordExtractor> = std::sync::OnceLock::new();
    EXTRACTOR.get_or_init(KeywordExtractor::new)
}

/// Text that looks like notes: words (some repeated, some stop words, some long), numbers,
/// punctuation, `#`, control characters and non-Latin scripts.
fn note_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        "[a-zA-Z]{1,12}",
        Just("the".to_owned()),
        Just("Running".to_owned()),
        "[0-9]{1,6}",
        "[a-z]{38,45}",
        "[#@.,;:!?()\\[\\]{}'\"/\\\\-]{1,3}",
        "[\\u{0}-\\u{1f}\\u{7f}-\\u{9f}]",
        "[àéîõüßçñøåæ]{2,8}",
        "[\\u{0400}-\\u{04ff}]{2,8}",
        "[\\u{4e00}-\\u{4e50}]{1,4}",
        "[\\u{1f600}-\\u{1f64f}]",
        "\\PC{1,8}",
    ];
    prop::collection::vec(token, 0..200).prop_map(|tokens| tokens.join(" "))
}

fn node_id() -> impl Strategy<Value = NodeId> {
    any::<[u8; 16]>().prop_map(NodeId::from_bytes)
}

/// Any string `UserId::parse` accepts, and some it does not (filtered out).
fn user_id() -> impl Strategy<Value = UserId> {
    prop_oneof!["[a-zA-Z0-9._@|-]{1,40}", "\\PC{1,20}"]
        .prop_filter_map("not a valid user id", |raw| UserId::parse(&raw).ok())
}

fn list_cursor() -> impl Strategy<Value = ListCursor> {
    (0..=i64::MAX, node_id()).prop_map(|(created_at_ms, node_id)| ListCursor { created_at_ms, node_id })
}

/// The keyword bounds every keyword of every text obeys.
fn assert_keyword_bounds(keyword: &str) -> Result<(), TestCaseError> {
    let length = keyword.chars().count();
    prop_assert!((1..=MAX_WORD_CHARS).contains(&length), "{keyword:?} has {length} characters");
    prop_assert_eq!(keyword.to_lowercase(), keyword, "keywords are lower-case");
    prop_assert!(
        !keyword.chars().any(|c| c == '#' || c.is_control() || c.is_whitespace()),
        "{keyword:?} could break a key or a search"
    );
    Ok(())
}

proptest! {
    #[test]
    fn extraction_never_panics_and_keywords_obey_their_bounds(text in prop_oneof![note_text(), any::<String>()]) {
        let keywords = extractor().extract(&text);
        prop_assert!(keywords.len() <= MAX_KEYWORDS_PER_NODE);
        let mut unique = keywords.clone();
        unique.sort();
        unique.dedup();
        prop_assert_eq!(unique.len(), keywords.len(), "no keyword twice");
        prop_assert_eq!(&extractor().extract(&text), &keywords, "extraction is deterministic");
        for keyword in &keywords {
            assert_keyword_bounds(keyword)?;
            // Every keyword comes from a word of the text that is no stop word, and searching
            // for that word finds it: extraction and search share one pipeline.
            let found = text.unicode_words().any(|word| {
                !extractor().is_stop_word(&word.to_lowercase())
                    && extractor().normalize_term(word).as_deref() == Some(keyword.as_str())
            });
            prop_assert!(found, "{keyword:?} is no searchable word of the text");
        }
    }

    #[test]
    fn search_terms_are_one_keyword_or_nothing(term in prop_oneof![note_text(), any::<String>(), "[a-zA-Z#]{0,12}"]) {
        if let Some(keyword) = extractor().normalize_term(&term) {
            assert_keyword_bounds(&keyword)?;
            prop_assert!(!term.contains('#'), "a term with the key separator is refused");
            prop_assert_eq!(term.unicode_words().count(), 1, "one word");
            prop_assert!(!extractor().is_stop_word(&term.unicode_words().next().unwrap().to_lowercase()));
        }
    }

    #[test]
    fn deletion_keys_round_trip(millis in 0..=MAX_KEY_MILLIS, user in user_id(), node in node_id()) {
        let key = deletion_sort_key(millis, &user, node);
        prop_assert_eq!(parse_deletion_sort_key(&key), Some((millis, user, node)));
    }

    #[test]
    fn time_keys_round_trip_and_sort_as_time(a in 0..=MAX_KEY_MILLIS, b in 0..=MAX_KEY_MILLIS, x in node_id(), y in node_id()) {
        prop_assert_eq!(parse_time_sort_key(&time_sort_key(a, x)), Some((a, x)));
        if a < b {
            prop_assert!(time_sort_key(a, x) < time_sort_key(b, y), "string order is time order");
        }
    }

    #[test]
    fn edge_keys_round_trip(owner in node_id(), other in node_id()) {
        prop_assert_eq!(parse_edge_sort_key(&edge_sort_key(owner, other)), Some((owner, other)));
    }

    #[test]
    fn key_parsers_never_panic(raw in prop_oneof![any::<String>(), "[0-9#A-Za-z-]{0,80}", "(TS|NODE|[0-9]{13})#.{0,60}"]) {
        let _ = parse_deletion_sort_key(&raw);
        let _ = parse_time_sort_key(&raw);
        let _ = parse_edge_sort_key(&raw);
    }

    #[test]
    fn cursors_round_trip_for_their_user_only(cursor in list_cursor(), alice in user_id(), bob in user_id()) {
        let key = CursorKey::built_in();
        let sealed = key.seal_listing(&alice, cursor);
        prop_assert_eq!(key.open_listing(&alice, &sealed), Ok(cursor));
        if bob != alice {
            prop_assert!(key.open_listing(&bob, &sealed).is_err(), "another user's cursor is refused");
        }
        prop_assert!(CursorKey::from_secret(b"another deployment").open_listing(&alice, &sealed).is_err());
        prop_assert!(key.open(CursorKind::GraphPage, &alice, &sealed).is_err(), "kinds do not mix");
    }

    #[test]
    fn any_change_to_a_cursor_is_refused(
        cursor in list_cursor(),
        user in user_id(),
        at in any::<prop::sample::Index>(),
        replacement in any::<char>(),
        bit in 0u8..8,
    ) {
        let key = CursorKey::built_in();
        let sealed = key.seal_listing(&user, cursor);
        let chars: Vec<char> = sealed.chars().collect();
        let i = at.index(chars.len());
        let mutations = {
            let mut replaced = chars.clone();
            replaced[i] = replacement;
            let mut removed = chars.clone();
            removed.remove(i);
            let mut inserted = chars.clone();
            inserted.insert(i, replacement);
            [replaced, removed, inserted, chars[..i].to_vec()].map(|c| c.into_iter().collect::<String>())
        };
        for mutated in mutations.iter().filter(|mutated| **mutated != sealed) {
            prop_assert!(key.open_listing(&user, mutated).is_err(), "{mutated} was accepted");
        }
        // A flipped bit in the decoded bytes, encoded again.
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut bytes = engine.decode(&sealed).unwrap();
        let byte = at.index(bytes.len());
        bytes[byte] ^= 1 << bit;
        prop_assert!(key.open_listing(&user, &engine.encode(&bytes)).is_err());
    }

    #[test]
    fn arbitrary_cursors_never_panic_and_are_refused(raw in prop_oneof![any::<String>(), "[A-Za-z0-9_-]{0,80}"], user in user_id()) {
        // A random 54-character string has a 2^-128 chance of carrying a valid tag.
        prop_assert!(CursorKey::built_in().open_listing(&user, &raw).is_err());
    }
}
