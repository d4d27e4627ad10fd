//! Keyword extraction: the same pipeline serves note content and search terms,
//! so a search for "Running" finds a note that says "runs".
//!
//! Matching works on stems (`carv` for "carve", "carving", "carved"); people read words.
//! Each keyword therefore also carries the word the note used most often for it.

use std::collections::{HashMap, HashSet};

use rust_stemmers::{Algorithm, Stemmer};
use unicode_segmentation::UnicodeSegmentation;

/// Shortest and longest word (in characters) that can become a keyword.
/// Shorter words are almost always noise; longer ones are usually URLs or hashes.
const MIN_WORD_CHARS: usize = 3;
pub const MAX_WORD_CHARS: usize = 40;
/// Longest search term read at all; a longer one cannot be one word of a keyword's length.
pub const MAX_TERM_CHARS: usize = 100;
/// Keywords per node. Each keyword is one posting item, so this bounds write cost per note.
pub const MAX_KEYWORDS_PER_NODE: usize = 20;

/// One keyword of a text: the stem that postings, search and similarity match on, and the
/// word shown for it (the text's most frequent form of the stem, in lower case; the first
/// to appear among equally frequent ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyword {
    pub stem: String,
    pub word: String,
}

/// How often, and first where, something appears in a text.
#[derive(Clone, Copy)]
struct Seen {
    count: usize,
    first: usize,
}

impl Seen {
    fn at(first: usize) -> Self {
        Self { count: 0, first }
    }

    /// More frequent first, then earlier first.
    fn rank(&self, other: &Self) -> std::cmp::Ordering {
        other.count.cmp(&self.count).then(self.first.cmp(&other.first))
    }
}

/// The forms a stem took in a text: each lower-cased word and how it was seen.
type Forms = HashMap<String, Seen>;

pub struct KeywordExtractor {
    stop_words: HashSet<&'static str>,
    stemmer: Stemmer,
}

impl Default for KeywordExtractor {
    fn default() -> Self {
        Self::new()
    }
}

impl KeywordExtractor {
    pub fn new() -> Self {
        Self {
            stop_words: stop_words::get("en").iter().copied().collect(),
            stemmer: Stemmer::create(Algorithm::English),
        }
    }

    /// Stems of a text's keywords, as [`KeywordExtractor::keywords`] ranks them.
    pub fn extract(&self, text: &str) -> Vec<String> {
        self.keywords(text).into_iter().map(|keyword| keyword.stem).collect()
    }

    /// Keywords of a text, most frequent first (ties keep their order of appearance),
    /// de-duplicated after stemming and capped at [`MAX_KEYWORDS_PER_NODE`].
    pub fn keywords(&self, text: &str) -> Vec<Keyword> {
        let mut stems: HashMap<String, (Seen, Forms)> = HashMap::new();
        for (position, (word, stem)) in text.unicode_words().filter_map(|w| self.normalize(w)).enumerate() {
            let (seen, forms) = stems.entry(stem).or_insert_with(|| (Seen::at(position), HashMap::new()));
            seen.count += 1;
            forms.entry(word).or_insert(Seen::at(position)).count += 1;
        }
        let mut ranked: Vec<(String, (Seen, Forms))> = stems.into_iter().collect();
        ranked.sort_by(|(_, (a, _)), (_, (b, _))| a.rank(b));
        ranked
            .into_iter()
            .take(MAX_KEYWORDS_PER_NODE)
            .map(|(stem, (_, forms))| {
                let word = forms.into_iter().min_by(|(_, a), (_, b)| a.rank(b)).map(|(word, _)| word);
                Keyword { word: word.unwrap_or_else(|| stem.clone()), stem }
            })
            .collect()
    }

    /// The keyword a search term stands for, or `None` when the term can never be a keyword
    /// (a stop word, a number, too short or too long, or more than one word). A term with
    /// `#` (the table's key separator) or a control character is refused outright rather
    /// than split: keywords go into keys, and a term is never silently read as another.
    pub fn normalize_term(&self, term: &str) -> Option<String> {
        if term.chars().count() > MAX_TERM_CHARS || term.chars().any(|c| c == '#' || c.is_control()) {
            return None;
        }
        let mut words = term.unicode_words();
        let word = words.next()?;
        if words.next().is_some() {
            return None;
        }
        self.normalize(word).map(|(_, stem)| stem)
    }

    /// A word in lower case and its stem, or `None` when the word cannot be a keyword.
    fn normalize(&self, word: &str) -> Option<(String, String)> {
        // The segmenter keeps a space with the combining marks that follow it (" \u{113cc}\u{b47}"
        // is one "word"), so a word is trimmed, and refused if anything of that kind is left:
        // keywords go into keys and are matched exactly.
        let word = word.trim();
        if word.chars().any(|c| c.is_whitespace() || c.is_control() || c == '#') {
            return None;
        }
        let lower = word.to_lowercase();
        let length = lower.chars().count();
        if !(MIN_WORD_CHARS..=MAX_WORD_CHARS).contains(&length)
            || self.stop_words.contains(lower.as_str())
            || lower.chars().all(|c| c.is_numeric() || c == '.' || c == ',')
        {
            return None;
        }
        let stem = self.stemmer.stem(&lower).into_owned();
        Some((lower, stem))
    }

    /// Whether `word` (lower-case) is one of the stop words, which never become keywords.
    pub fn is_stop_word(&self, word: &str) -> bool {
        self.stop_words.contains(word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_stop_words_short_words_and_numbers() {
        let keywords = KeywordExtractor::new().extract("The cat and I watched 2024 of it on a mat");
        assert_eq!(keywords, vec!["cat", "watch", "mat"]);
    }

    #[test]
    fn stems_lowercases_and_deduplicates() {
        let keywords = KeywordExtractor::new().extract("Running runs RUN; the runner ran graphs. Graph!");
        assert_eq!(keywords[0], "run");
        assert_eq!(keywords[1], "graph");
        assert_eq!(keywords.iter().filter(|k| k.as_str() == "run").count(), 1);
    }

    #[test]
    fn ranks_by_frequency_then_first_appearance() {
        let keywords = KeywordExtractor::new().extract("alpha beta gamma beta gamma beta");
        assert_eq!(keywords, vec!["beta", "gamma", "alpha"]);
    }

    #[test]
    fn shows_each_stem_as_the_word_the_text_used_most() {
        let keywords = KeywordExtractor::new().keywords("Rivers carve valleys. Carving rivers, the river carves.");
        let shown: Vec<(&str, &str)> = keywords.iter().map(|k| (k.stem.as_str(), k.word.as_str())).collect();
        // "river" 3 times (rivers twice), "carv" 3 times (carve, carving, carves: a tie,
        // so the first one), "valley" once.
        assert_eq!(shown, vec![("river", "rivers"), ("carv", "carve"), ("valley", "valleys")]);
        let activity = KeywordExtractor::new().keywords("An active starter; ACTIVE again");
        assert_eq!(activity[0], Keyword { stem: "activ".into(), word: "active".into() });
    }

    #[test]
    fn caps_keyword_count() {
        let text: String = (0..100).map(|i| format!("word{i:03}x ")).collect();
        assert_eq!(KeywordExtractor::new().extract(&text).len(), MAX_KEYWORDS_PER_NODE);
    }

    #[test]
    fn handles_unicode_words() {
        let keywords = KeywordExtractor::new().extract("Über naïve café — déjà vu");
        assert!(keywords.contains(&"über".to_owned()));
        assert!(keywords.contains(&"café".to_owned()));
    }

    #[test]
    fn search_terms_use_the_same_pipeline() {
        let extractor = KeywordExtractor::new();
        assert_eq!(extractor.normalize_term("Running").as_deref(), Some("run"));
        assert_eq!(extractor.normalize_term("the"), None);
        assert_eq!(extractor.normalize_term("two words"), None);
        assert_eq!(extractor.normalize_term(""), None);
        assert_eq!(extractor.normalize_term("#running"), None);
        assert_eq!(extractor.normalize_term("run\u{0}ning"), None);
        assert_eq!(extractor.normalize_term(&"a".repeat(MAX_TERM_CHARS + 1)), None);
    }

    #[test]
    fn words_are_trimmed_of_what_the_segmenter_leaves_on_them() {
        // Found by the property tests: a space followed by combining marks is one segment.
        let keywords = KeywordExtractor::new().extract("A \u{113cc}\u{b47} note \u{113cc}\u{b47}\u{b47}\u{b47}");
        assert!(keywords.iter().all(|k| !k.chars().any(char::is_whitespace)), "{keywords:?}");
        assert!(keywords.contains(&"note".to_owned()));
    }

    #[test]
    fn skips_overlong_tokens() {
        let long = "a".repeat(MAX_WORD_CHARS + 1);
        assert!(KeywordExtractor::new().extract(&long).is_empty());
    }
}
