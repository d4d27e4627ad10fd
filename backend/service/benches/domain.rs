//! The pure domain's hot paths: keyword extraction on every create and update, and the
//! similarity scoring the similarity worker runs for every created or updated note.

use std::collections::HashMap;
use std::hint::black_box;

use brain2::domain::similarity::{Candidate, DocumentFrequencies, SimilarityPolicy, best_matches};
use brain2::domain::{KeywordExtractor, NodeId};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Fixed, so every run measures the same text and the same corpus.
const SEED: u64 = 0x6272_6169_6e32;

// Sentence parts, `|`-separated: how notes open, describe, name, relate and end.
const OPENERS: &str = "Today|Yesterday|In practice|Surprisingly|As expected|Later that week|Note to self:|However|\
                       On reflection|During the review";
const ADJECTIVES: &str = "quiet|steep|careful|unexpected|practical|fragile|detailed|recurring|complicated|simple|\
                          seasonal|gradual|important|curious|noisy|patient";
const NOUNS: &str = "river|valley|garden|kitchen|project|meeting|deadline|library|notebook|experiment|theory|market|\
                     budget|recipe|journey|mountain|database|server|query|pattern|habit|conversation|argument|design|\
                     feedback|migration|schedule|language|chapter|character|memory|question|problem|solution|\
                     network|forest|harvest|sourdough|starter|marathon|interval|recovery";
const VERBS: &str = "carves|shapes|explains|supports|changes|reveals|connects to|improves|slows down|follows|requires|\
                     describes|reminds me of|depends on|builds on|contradicts|was running into";
const ENDINGS: &str = "after the long winter|during the weekly review|in the second chapter|before the next release|\
                       without much effort|because of the rain|for the third time this year|in 2023|\
                       at 7 am on Tuesdays|more than I thought it would|and nobody noticed|\
                       which is worth writing down";

/// English prose of at most `bytes` bytes (and within a sentence of it), the way notes are
/// written: stop words, capitals, punctuation, numbers, repeated topics, paragraphs.
fn prose(bytes: usize) -> String {
    let [openers, adjectives, nouns, verbs, endings] =
        [OPENERS, ADJECTIVES, NOUNS, VERBS, ENDINGS].map(|parts| parts.split('|').collect::<Vec<_>>());
    let mut rng = StdRng::seed_from_u64(SEED);
    let pick = |rng: &mut StdRng, words: &[&'static str]| *words.choose(rng).expect("word lists are not empty");
    let mut text = String::with_capacity(bytes);
    loop {
        let sentence = format!(
            "{} the {} {} {} the {} {}.",
            pick(&mut rng, &openers),
            pick(&mut rng, &adjectives),
            pick(&mut rng, &nouns),
            pick(&mut rng, &verbs),
            pick(&mut rng, &nouns),
            pick(&mut rng, &endings),
        );
        let separator = if text.is_empty() {
            ""
        } else if rng.gen_ratio(1, 5) {
            "\n\n"
        } else {
            " "
        };
        if text.len() + separator.len() + sentence.len() > bytes {
            return text;
        }
        text.push_str(separator);
        text.push_str(&sentence);
    }
}

fn keyword_extraction(c: &mut Criterion) {
    let extractor = KeywordExtractor::new();
    let mut group = c.benchmark_group("keywords");
    // 16 KiB is beyond the API's 10,000-character content limit: it shows how extraction
    // scales past the longest note a client can send.
    for (label, bytes) in [("1KiB", 1024), ("16KiB", 16 * 1024)] {
        let text = prose(bytes);
        assert!(!extractor.extract(&text).is_empty(), "the generated prose yields no keywords");
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::new("extract", label), &text, |b, text| {
            b.iter(|| extractor.extract(black_box(text)))
        });
    }
    group.finish();
}

/// Notes in the similarity corpus, all of them candidates of the scored note.
const CANDIDATES: usize = 10_000;
const TOPICS: usize = 40;
const WORDS_PER_TOPIC: usize = 150;
const SHARED_WORDS: usize = 3_000;

/// A distinct word-like keyword (6 to 9 letters) for every index below 24^3.
fn stem(index: usize) -> String {
    const SYLLABLES: [&str; 24] = [
        "ka", "lor", "men", "tis", "ve", "dra", "pol", "sun", "ber", "qui", "nat", "ro", "gel", "fin", "mar", "tes",
        "wen", "cal", "dor", "ish", "plu", "ran", "sol", "vet",
    ];
    let digit = |place: usize| SYLLABLES[(index / 24usize.pow(place as u32)) % 24];
    format!("{}{}{}", digit(0), digit(1), digit(2))
}

/// Keyword draws that follow Zipf's law, as words in real notes do: a few words are in
/// many notes, most are in a few.
struct Vocabulary {
    words: Vec<String>,
    ranks: WeightedIndex<f64>,
}

impl Vocabulary {
    fn new(first: usize, size: usize) -> Self {
        let words = (first..first + size).map(stem).collect();
        let ranks = WeightedIndex::new((1..=size).map(|rank| 1.0 / rank as f64)).expect("weights are positive");
        Self { words, ranks }
    }

    fn draw(&self, rng: &mut StdRng) -> &str {
        &self.words[self.ranks.sample(rng)]
    }
}

/// A note of the corpus and the topic it is about.
struct Note {
    id: NodeId,
    topic: usize,
    keywords: Vec<String>,
}

/// 8 to 20 distinct keywords, about half from the note's topic, half from the words every
/// topic uses.
fn note(rng: &mut StdRng, topic: usize, topics: &[Vocabulary], shared: &Vocabulary) -> Note {
    let wanted = rng.gen_range(8..=20);
    let mut keywords: Vec<String> = Vec::with_capacity(wanted);
    while keywords.len() < wanted {
        let vocabulary = if rng.gen_bool(0.5) { &topics[topic] } else { shared };
        let word = vocabulary.draw(rng);
        if !keywords.iter().any(|known| known == word) {
            keywords.push(word.to_owned());
        }
    }
    Note { id: NodeId::generate(), topic, keywords }
}

/// The counters the store would hold for these notes.
fn document_frequencies<'a>(notes: impl Iterator<Item = &'a Note>) -> DocumentFrequencies {
    let mut frequencies = DocumentFrequencies::default();
    for note in notes {
        frequencies.total_documents += 1;
        for keyword in &note.keywords {
            *frequencies.per_keyword.entry(keyword.clone()).or_insert(0) += 1;
        }
    }
    frequencies
}

fn similarity_scoring(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(SEED);
    let shared = Vocabulary::new(0, SHARED_WORDS);
    let topics: Vec<Vocabulary> =
        (0..TOPICS).map(|topic| Vocabulary::new(SHARED_WORDS + topic * WORDS_PER_TOPIC, WORDS_PER_TOPIC)).collect();
    let notes: Vec<Note> = (0..CANDIDATES).map(|index| note(&mut rng, index % TOPICS, &topics, &shared)).collect();
    let subject = note(&mut rng, 0, &topics, &shared);
    let frequencies = document_frequencies(notes.iter().chain([&subject]));
    let candidates: Vec<Candidate<'_>> =
        notes.iter().map(|note| Candidate { id: note.id, keywords: &note.keywords }).collect();
    let policy = SimilarityPolicy::default();

    let matches = best_matches(subject.id, &subject.keywords, &candidates, &frequencies, &policy);
    let topic_of: HashMap<NodeId, usize> = notes.iter().map(|note| (note.id, note.topic)).collect();
    assert!(!matches.is_empty(), "no candidate is similar enough: the corpus is not realistic");
    assert!(
        matches.iter().all(|matched| topic_of[&matched.id] == subject.topic),
        "a note of another topic outranked the subject's own topic"
    );

    let mut group = c.benchmark_group("similarity");
    group.throughput(Throughput::Elements(candidates.len() as u64));
    group.bench_function(BenchmarkId::new("best_matches", format!("{CANDIDATES}_candidates")), |b| {
        b.iter(|| best_matches(subject.id, black_box(&subject.keywords), black_box(&candidates), &frequencies, &policy))
    });
    group.finish();
}

criterion_group!(benches, keyword_extraction, similarity_scoring);
criterion_main!(benches);
