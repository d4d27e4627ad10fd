use chrono::{DateTime, Utc};

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
    pub fn new(content: &str, tags: &[String]) -> Result<Self, DomainError> {
        let content = content.trim();
        if content.is_empty() {
            return Err(DomainError::EmptyContent);
        }
        let length = content.chars().count();
        if length > MAX_CONTENT_CHARS {
            return Err(DomainError::ContentTooLong { actual: length, limit: MAX_CONTENT_CHARS });
        }
        let mut unique_tags: Vec<String> = Vec::with_capacity(tags.len());
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
                unique_tags.push(tag.to_owned());
            }
        }
        if unique_tags.len() > MAX_TAGS {
            return Err(DomainError::TooManyTags { actual: unique_tags.len(), limit: MAX_TAGS });
        }
        Ok(Self { content: content.to_owned(), tags: unique_tags })
    }
}

/// A note in a user's graph. `version` starts at 1 and grows by one with every update;
/// updates must name the version they were based on (optimistic concurrency).
#[derive(Debug, Clone, PartialEq)]
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
