//! Keyword similarity between one user's notes, the basis of `similarity` edges.
//!
//! Document frequencies come in from the store's per-user counters rather than being
//! recomputed here: scoring one note must not mean reading every other note.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use super::NodeId;

/// Document frequencies of one user's keywords.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocumentFrequencies {
    pub total_documents: u64,
    pub per_keyword: HashMap<String, u64>,
}

impl DocumentFrequencies {
    /// Smoothed inverse document frequency, `ln((1 + N) / (1 + df)) + 1`.
    ///
    /// The counters are updated apart from the notes, so a keyword can be missing
    /// (a note not counted yet) or counted in more notes than the total (a deletion
    /// not yet reflected). Smoothing covers the first case; capping `df` at `N`
    /// keeps the second from producing a negative weight.
    pub fn idf(&self, keyword: &str) -> f64 {
        let total = self.total_documents as f64;
        let frequency = self.per_keyword.get(keyword).copied().unwrap_or(0).min(self.total_documents) as f64;
        ((1.0 + total) / (1.0 + frequency)).ln() + 1.0
    }
}

/// Tunables for linking notes by similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimilarityPolicy {
    /// Bounds the edges written per note, and so the fan-out of one update.
    pub max_edges: usize,
    /// Below this, shared keywords are more likely coincidence than a real relation.
    pub threshold: f64,
}

impl Default for SimilarityPolicy {
    fn default() -> Self {
        Self { max_edges: 10, threshold: 0.3 }
    }
}

/// A candidate: another node of the same user and its keywords.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub id: NodeId,
    pub keywords: &'a [String],
}

/// A candidate worth linking; `score` is in (0, 1] so it can be used as an edge weight as is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredMatch {
    pub id: NodeId,
    pub score: f64,
}

/// TF-IDF cosine similarity between keyword sets (binary term frequency: a keyword is
/// present or not; each keyword weighted by its idf). Empty sets score 0.
pub fn cosine(a: &[String], b: &[String], df: &DocumentFrequencies) -> f64 {
    WeightedKeywords::new(a, df).cosine(&WeightedKeywords::new(b, df))
}

/// Scores candidates against `subject_keywords`, skips `subject` itself and duplicate
/// candidate ids, keeps scores >= threshold (and > 0), sorted by score descending then id,
/// truncated to `max_edges`. Scores are in (0, 1].
pub fn best_matches(
    subject: NodeId,
    subject_keywords: &[String],
    candidates: &[Candidate<'_>],
    df: &DocumentFrequencies,
    policy: &SimilarityPolicy,
) -> Vec<ScoredMatch> {
    let subject_weights = WeightedKeywords::new(subject_keywords, df);
    let mut seen = HashSet::from([subject]);
    let mut matches: Vec<ScoredMatch> = candidates
        .iter()
        .filter(|candidate| seen.insert(candidate.id))
        .map(|candidate| ScoredMatch {
            id: candidate.id,
            score: subject_weights.cosine(&WeightedKeywords::new(candidate.keywords, df)),
        })
        .filter(|scored| scored.score > 0.0 && scored.score >= policy.threshold)
        .collect();
    matches.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    matches.truncate(policy.max_edges);
    matches
}

/// The linked notes among `linked` whose similarity to the subject no longer reaches the
/// threshold (its keywords changed, or theirs did): their `similarity` edges should go.
/// Linked notes are scored whatever their rank, so a link that still passes stays even
/// when stronger matches exist.
pub fn stale_links(
    subject_keywords: &[String],
    linked: &[Candidate<'_>],
    df: &DocumentFrequencies,
    policy: &SimilarityPolicy,
) -> Vec<NodeId> {
    let subject_weights = WeightedKeywords::new(subject_keywords, df);
    linked
        .iter()
        .filter(|candidate| {
            let score = subject_weights.cosine(&WeightedKeywords::new(candidate.keywords, df));
            !(score > 0.0 && score >= policy.threshold)
        })
        .map(|candidate| candidate.id)
        .collect()
}

/// A keyword set with its idf weights, sorted by keyword so that comparing two sets is a
/// merge and sums run in the same order whatever order the keywords arrived in: equal
/// inputs then give bit-equal scores, which keeps tie-breaking by id meaningful.
struct WeightedKeywords<'k> {
    weights: Vec<(&'k str, f64)>,
    norm_squared: f64,
}

impl<'k> WeightedKeywords<'k> {
    fn new(keywords: &'k [String], df: &DocumentFrequencies) -> Self {
        let mut sorted: Vec<&str> = keywords.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        // Binary term frequency: a repeated keyword counts once.
        sorted.dedup();
        let weights: Vec<(&str, f64)> = sorted.into_iter().map(|keyword| (keyword, df.idf(keyword))).collect();
        let norm_squared = weights.iter().map(|(_, weight)| weight * weight).sum();
        Self { weights, norm_squared }
    }

    fn cosine(&self, other: &Self) -> f64 {
        if self.weights.is_empty() || other.weights.is_empty() {
            return 0.0;
        }
        let (mut i, mut j, mut dot) = (0, 0, 0.0);
        while let (Some((a, weight_a)), Some((b, weight_b))) = (self.weights.get(i), other.weights.get(j)) {
            match a.cmp(b) {
                Ordering::Less => i += 1,
                Ordering::Greater => j += 1,
                Ordering::Equal => {
                    dot += weight_a * weight_b;
                    i += 1;
                    j += 1;
                }
            }
        }
        // One square root of the product rather than a product of roots: for identical sets
        // it gives back `dot` exactly, so they score exactly 1. The cap catches rounding in
        // other cases, since an edge weight above 1 is rejected.
        (dot / (self.norm_squared * other.norm_squared).sqrt()).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::KeywordExtractor;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| (*w).to_owned()).collect()
    }

    fn frequencies(total: u64, counts: &[(&str, u64)]) -> DocumentFrequencies {
        DocumentFrequencies {
            total_documents: total,
            per_keyword: counts.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
        }
    }

    /// Document frequencies as the store's counters would hold them for these notes.
    fn frequencies_of(notes: &[Vec<String>]) -> DocumentFrequencies {
        let mut per_keyword = HashMap::new();
        for keywords in notes {
            for keyword in keywords.iter().collect::<HashSet<_>>() {
                *per_keyword.entry(keyword.clone()).or_insert(0) += 1;
            }
        }
        DocumentFrequencies { total_documents: notes.len() as u64, per_keyword }
    }

    #[test]
    fn idf_is_smoothed_and_never_below_one() {
        let df = frequencies(10, &[("common", 10), ("rare", 1), ("overcounted", 25)]);
        assert!((df.idf("common") - 1.0).abs() < 1e-12);
        assert!((df.idf("rare") - ((11.0_f64 / 2.0).ln() + 1.0)).abs() < 1e-12);
        assert!((df.idf("unseen") - (11.0_f64.ln() + 1.0)).abs() < 1e-12);
        assert!((df.idf("overcounted") - 1.0).abs() < 1e-12);
        assert!(df.idf("rare") > df.idf("common"));
        assert!(df.idf("unseen") > df.idf("rare"));

        let empty = DocumentFrequencies::default();
        assert!((empty.idf("anything") - 1.0).abs() < 1e-12);
        let huge = frequencies(u64::MAX, &[("x", u64::MAX)]);
        assert!(huge.idf("x").is_finite() && huge.idf("y").is_finite());
    }

    #[test]
    fn links_below_the_threshold_are_stale_whatever_the_rank() {
        let df = frequencies(10, &[]);
        let subject = words(&["a1", "a2", "a3", "a4"]);
        let same = words(&["a1", "a2", "a3", "a4"]);
        let close = words(&["a1", "a2", "b1", "b2"]);
        let drifted = words(&["a1", "b1", "b2", "b3", "b4", "b5"]);
        let unrelated = words(&["c1"]);
        let ids: Vec<NodeId> = (0..4).map(|_| NodeId::generate()).collect();
        let linked = [
            Candidate { id: ids[0], keywords: &same },
            Candidate { id: ids[1], keywords: &close },
            Candidate { id: ids[2], keywords: &drifted },
            Candidate { id: ids[3], keywords: &unrelated },
        ];
        // Only one edge per note allowed: the close note is not among the best matches any
        // more, but it still passes the threshold, so its link is not stale.
        let policy = SimilarityPolicy { max_edges: 1, ..SimilarityPolicy::default() };
        assert_eq!(stale_links(&subject, &linked, &df, &policy), vec![ids[2], ids[3]]);
        assert_eq!(stale_links(&[], &linked, &df, &policy), ids);
        assert!(stale_links(&subject, &[], &df, &policy).is_empty());
    }

    #[test]
    fn identical_sets_score_one() {
        let df = frequencies(50, &[("sourdough", 3), ("starter", 5), ("flour", 20)]);
        let keywords = words(&["sourdough", "starter", "flour", "unseen"]);
        let mut shuffled = keywords.clone();
        shuffled.reverse();
        assert_eq!(cosine(&keywords, &keywords, &df), 1.0);
        assert_eq!(cosine(&keywords, &shuffled, &df), 1.0);
    }

    #[test]
    fn disjoint_sets_score_zero() {
        let df = frequencies(10, &[]);
        assert_eq!(cosine(&words(&["borrow", "checker"]), &words(&["marathon", "pace"]), &df), 0.0);
    }

    #[test]
    fn empty_sets_score_zero_without_nan() {
        let df = frequencies(0, &[]);
        let some = words(&["borrow"]);
        for score in [cosine(&[], &[], &df), cosine(&some, &[], &df), cosine(&[], &some, &df)] {
            assert_eq!(score, 0.0);
        }
        let candidates = [Candidate { id: NodeId::generate(), keywords: &[] }];
        let policy = SimilarityPolicy { max_edges: 10, threshold: 0.0 };
        assert!(best_matches(NodeId::generate(), &some, &candidates, &df, &policy).is_empty());
        assert!(best_matches(NodeId::generate(), &[], &candidates, &df, &policy).is_empty());
    }

    #[test]
    fn repeated_keywords_count_once() {
        let df = frequencies(10, &[("bread", 2), ("oven", 2)]);
        let plain = cosine(&words(&["bread", "oven"]), &words(&["bread", "crust"]), &df);
        let repeated = cosine(&words(&["bread", "bread", "oven"]), &words(&["bread", "crust"]), &df);
        assert!((plain - repeated).abs() < 1e-12);
    }

    #[test]
    fn rare_shared_keywords_outweigh_common_ones() {
        let df = frequencies(100, &[("rare", 2), ("common", 90), ("alpha", 10), ("beta", 10)]);
        let rare_shared = cosine(&words(&["rare", "alpha"]), &words(&["rare", "beta"]), &df);
        let common_shared = cosine(&words(&["common", "alpha"]), &words(&["common", "beta"]), &df);
        assert!(rare_shared > common_shared, "{rare_shared} <= {common_shared}");
    }

    #[test]
    fn threshold_and_max_edges_are_respected() {
        let df = frequencies(10, &[]);
        let subject = words(&["a1", "a2", "a3", "a4"]);
        let strong = words(&["a1", "a2", "a3", "a4"]);
        let medium = words(&["a1", "a2", "b1", "b2"]);
        let weak = words(&["a1", "b1", "b2", "b3", "b4", "b5"]);
        let ids: Vec<NodeId> = (0..3).map(|_| NodeId::generate()).collect();
        let candidates = [
            Candidate { id: ids[2], keywords: &weak },
            Candidate { id: ids[1], keywords: &medium },
            Candidate { id: ids[0], keywords: &strong },
        ];
        let subject_id = NodeId::generate();

        let all = best_matches(subject_id, &subject, &candidates, &df, &SimilarityPolicy::default());
        assert_eq!(all.iter().map(|m| m.id).collect::<Vec<_>>(), vec![ids[0], ids[1]]);
        assert!(all.iter().all(|m| m.score >= 0.3 && m.score <= 1.0));

        let capped = SimilarityPolicy { max_edges: 1, ..SimilarityPolicy::default() };
        let top = best_matches(subject_id, &subject, &candidates, &df, &capped);
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].id, ids[0]);

        let lenient = SimilarityPolicy { threshold: 0.1, ..SimilarityPolicy::default() };
        assert_eq!(best_matches(subject_id, &subject, &candidates, &df, &lenient).len(), 3);

        let none = SimilarityPolicy { max_edges: 0, ..SimilarityPolicy::default() };
        assert!(best_matches(subject_id, &subject, &candidates, &df, &none).is_empty());
    }

    #[test]
    fn zero_threshold_still_drops_unrelated_candidates() {
        let df = frequencies(10, &[]);
        let subject = words(&["a"]);
        let unrelated = words(&["b"]);
        let candidates = [Candidate { id: NodeId::generate(), keywords: &unrelated }];
        let policy = SimilarityPolicy { max_edges: 10, threshold: 0.0 };
        assert!(best_matches(NodeId::generate(), &subject, &candidates, &df, &policy).is_empty());
    }

    #[test]
    fn skips_self_and_duplicate_candidates() {
        let df = frequencies(10, &[]);
        let keywords = words(&["a", "b"]);
        let other_keywords = words(&["a", "c"]);
        let (subject, other) = (NodeId::generate(), NodeId::generate());
        let candidates = [
            Candidate { id: subject, keywords: &keywords },
            Candidate { id: other, keywords: &keywords },
            Candidate { id: other, keywords: &other_keywords },
        ];
        let matches = best_matches(subject, &keywords, &candidates, &df, &SimilarityPolicy::default());
        assert_eq!(matches.len(), 1);
        assert_eq!(matches[0].id, other);
        // The first occurrence of a duplicated id is the one scored.
        assert!((matches[0].score - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ordering_is_deterministic_with_ties_broken_by_id() {
        let df = frequencies(10, &[]);
        let subject = words(&["a", "b"]);
        let tied = words(&["a", "c"]);
        let best = words(&["a", "b"]);
        let mut ids: Vec<NodeId> = (0..4).map(|_| NodeId::generate()).collect();
        ids.sort();
        let forward = [
            Candidate { id: ids[3], keywords: &tied },
            Candidate { id: ids[1], keywords: &tied },
            Candidate { id: ids[2], keywords: &best },
            Candidate { id: ids[0], keywords: &tied },
        ];
        let mut backward = forward;
        backward.reverse();
        let policy = SimilarityPolicy::default();
        let first = best_matches(NodeId::generate(), &subject, &forward, &df, &policy);
        let second = best_matches(NodeId::generate(), &subject, &backward, &df, &policy);
        let order: Vec<NodeId> = first.iter().map(|m| m.id).collect();
        assert_eq!(order, vec![ids[2], ids[0], ids[1], ids[3]]);
        assert_eq!(first, second);
    }

    #[test]
    fn related_notes_match_and_unrelated_ones_do_not() {
        let texts = [
            ("bread", "Fed the sourdough starter with rye flour; the dough proofed overnight before baking the loaf."),
            ("bread", "My sourdough loaf needed a longer proof: the starter was sluggish, so the dough baked dense."),
            ("bread", "Baking sourdough: autolyse the flour, fold the dough, proof it cold, then bake the loaf hot."),
            ("rust", "The Rust borrow checker rejects a mutable borrow while an immutable reference is still alive."),
            (
                "rust",
                "Fixed a borrow checker error in Rust by ending the immutable reference before the mutable borrow.",
            ),
            (
                "running",
                "Marathon training plan: long runs on Sunday, tempo intervals midweek, sourdough toast before races.",
            ),
        ];
        let extractor = KeywordExtractor::new();
        let keywords: Vec<Vec<String>> = texts.iter().map(|(_, text)| extractor.extract(text)).collect();
        let df = frequencies_of(&keywords);
        // The marathon note mentions sourdough on purpose: one shared word must not be enough.
        assert!(cosine(&keywords[0], &keywords[5], &df) > 0.0);
        let ids: Vec<NodeId> = texts.iter().map(|_| NodeId::generate()).collect();
        let policy = SimilarityPolicy::default();

        for i in 0..texts.len() {
            for j in (i + 1)..texts.len() {
                let score = cosine(&keywords[i], &keywords[j], &df);
                if texts[i].0 == texts[j].0 {
                    assert!(score >= policy.threshold, "notes {i} and {j} should match, scored {score}");
                } else {
                    assert!(score < policy.threshold, "notes {i} and {j} should not match, scored {score}");
                }
            }
        }

        let candidates: Vec<Candidate<'_>> =
            ids.iter().zip(&keywords).map(|(id, keywords)| Candidate { id: *id, keywords }).collect();
        for (i, (subject_topic, _)) in texts.iter().enumerate() {
            let matches = best_matches(ids[i], &keywords[i], &candidates, &df, &policy);
            let mut matched: Vec<NodeId> = matches.iter().map(|m| m.id).collect();
            matched.sort();
            let mut expected: Vec<NodeId> =
                (0..texts.len()).filter(|&j| j != i && texts[j].0 == *subject_topic).map(|j| ids[j]).collect();
            expected.sort();
            assert_eq!(matched, expected, "matches of note {i}");
        }
    }
}
