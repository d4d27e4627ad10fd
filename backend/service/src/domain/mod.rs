//! Pure domain model: nodes, edges, keywords and the events they raise.
//! Nothing in here knows about AWS, HTTP or serialisation formats of the store.

pub mod edge;
pub mod error;
pub mod events;
pub mod ids;
pub mod keywords;
pub mod live;
pub mod node;
pub mod similarity;

pub use edge::{Edge, EdgeKind, EdgeWeight};
pub use error::DomainError;
pub use events::DomainEvent;
pub use ids::{NodeId, UserId};
pub use keywords::{Keyword, KeywordExtractor};
pub use node::{Node, NodeDraft};
