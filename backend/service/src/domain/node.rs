use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DomainError, Keyword, KeywordExtractor, NodeId, UserId};

pub const MAX_CONTENT_CHARS: usize = 10_000;
pub const MAX_TAGS: usize = 10;
pub const MAX_TAG_CHARS: usize = 50;

/// Validated user input for a node: what a create or update may set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDraft {
    content: String,
    tags: Vec<String>,
}

impl NodeDraft {
    /// Content is trimmed; tags are trimmed and de-duplicated in order.
    ///
    /// Content may hold any character but the control characters other than tab, line feed
    /// and carriage return; tags no control character at all. Neither ever reaches a key of
    /// the table (keys are built from the user id, node ids and extracted keywords), so `#`
    /// is allowed in both.
    pub fn new(content: &str, tags: &[String]) -> Result<Self, DomainError> {
        let content = content.trim();
        if content.is_empty() {
            return Err(DomainError::EmptyContent);
        }
        let mut length = 0;
        for (position, c) in content.chars().enumerate() {
            if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
                return Err(DomainError::ContentControlCharacter { position });
            }
            length = position + 1;
        }
        if length > MAX_CONTENT_CHARS {
            return Err(DomainError::ContentTooLong { actual: length, limit: MAX_CONTENT_CHARS });
        }
        let mut unique_tags: Vec<String> = Vec::with_capacity(tags.len().min(MAX_TAGS));
        for raw in tags {
            let tag = raw.trim();
            let valid = !tag.is_empty() && tag.chars().count() <= MAX_TAG_CHARS && !tag.chars().any(char::is_control);
            if !valid {
                return Err(DomainError::InvalidTag {
                    tag: raw.chars().take(MAX_TAG_CHARS + 10).collect(),
                    limit: MAX_TAG_CHARS,
                });
            }
            if !unique_tags.iter().any(|t| t == tag) {
                // Refused as soon as one tag too many is seen: the de-duplication stays
                // linear in the tags sent, however many a body carries.
                if unique_tags.len() == MAX_TAGS {
                    return Err(DomainError::TooManyTags { actual: tags.len(), limit: MAX_TAGS });
                }
                unique_tags.push(tag.to_owned());
            }
        }
        Ok(Self { content: content.to_owned(), tags: unique_tags })
    }
}

/// A note in a user's graph. `version` starts at 1 and grows by one with every update;
/// updates must name the version they were based on (optimistic concurrency).
/// Serializable for the shared read cache, which keeps nodes as they were read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub id: NodeId,
    pub user_id: UserId,
    pub content: String,
    /// Stems, most frequent first: what postings, search and similarity match on.
    pub keywords: Vec<String>,
    /// For each stem of `keywords`, at the same position, the word shown to people.
    pub display_keywords: Vec<String>,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

fn split(keywords: Vec<Keyword>) -> (Vec<String>, Vec<String>) {
    keywords.into_iter().map(|keyword| (keyword.stem, keyword.word)).unzip()
}

impl Node {
    pub fn create(user_id: UserId, draft: NodeDraft, extractor: &KeywordExtractor, now: DateTime<Utc>) -> Self {
        let (keywords, display_keywords) = split(extractor.keywords(&draft.content));
        Self {
            id: NodeId::generate(),
            user_id,
            keywords,
            display_keywords,
            content: draft.content,
            tags: draft.tags,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// The next version of this node with new content and tags.
    pub fn revise(&self, draft: NodeDraft, extractor: &KeywordExtractor, now: DateTime<Utc>) -> Self {
        let (keywords, display_keywords) = split(extractor.keywords(&draft.content));
        Self {
            id: self.id,
            user_id: self.user_id.clone(),
            keywords,
            display_keywords,
            content: draft.content,
            tags: draft.tags,
            created_at: self.created_at,
            // Never move backwards, even if the clock does.
            updated_at: now.max(self.updated_at),
            version: self.version + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn draft_trims_and_deduplicates() {
        let draft = NodeDraft::new("  hello world  ", &tags(&[" a ", "b", "a"])).unwrap();
        assert_eq!(draft.content, "hello world");
        assert_eq!(draft.tags, tags(&["a", "b"]));
    }

    #[test]
    fn draft_rejects_bad_input() {
        assert_eq!(NodeDraft::new("   ", &[]), Err(DomainError::EmptyContent));
        let long = "x".repeat(MAX_CONTENT_CHARS + 1);
        assert!(matches!(NodeDraft::new(&long, &[]), Err(DomainError::ContentTooLong { .. })));
        assert!(matches!(NodeDraft::new("ok", &tags(&[""])), Err(DomainError::InvalidTag { .. })));
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
        assert!(matches!(NodeDraft::new("ok", &many), Err(DomainError::TooManyTags { .. })));
        let repeated: Vec<String> = (0..100).map(|i| format!("t{}", i % MAX_TAGS)).collect();
        assert_eq!(NodeDraft::new("ok", &repeated).unwrap().tags.len(), MAX_TAGS);
        assert_eq!(NodeDraft::new("a\u{0}b", &[]), Err(DomainError::ContentControlCharacter { position: 1 }));
        assert_eq!(NodeDraft::new("ok", &tags(&["a\u{7f}"])).unwrap_err().code(), "invalid-tag");
    }

    #[test]
    fn draft_keeps_text_layout_and_key_separators() {
        let draft = NodeDraft::new("line one\n\tline two\r\nC# and #tags", &tags(&["#rust", "a#b"])).unwrap();
        assert_eq!(draft.content, "line one\n\tline two\r\nC# and #tags");
        assert_eq!(draft.tags, tags(&["#rust", "a#b"]));
        let longest = "é".repeat(MAX_CONTENT_CHARS);
        assert!(NodeDraft::new(&longest, &[]).is_ok(), "the limit counts characters, not bytes");
    }

    #[test]
    fn revise_bumps_version_and_keeps_identity() {
        let extractor = KeywordExtractor::new();
        let user = UserId::parse("u1").unwrap();
        let now = Utc::now();
        let node = Node::create(user, NodeDraft::new("graphs of rivers", &[]).unwrap(), &extractor, now);
        assert_eq!(node.version, 1);
        let later = now + chrono::Duration::seconds(5);
        let revised = node.revise(NodeDraft::new("mountains", &[]).unwrap(), &extractor, later);
        assert_eq!(revised.id, node.id);
        assert_eq!(revised.version, 2);
        assert_eq!(revised.created_at, node.created_at);
        assert_eq!(revised.updated_at, later);
        assert_eq!(revised.keywords, vec!["mountain"]);
        assert_eq!(revised.display_keywords, vec!["mountains"]);
    }
}
