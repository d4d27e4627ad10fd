//! Application services: the use cases, written against the ports only.

pub mod cleanup;
pub mod health;
pub mod service;
pub mod similarity;

pub use service::{GraphService, ServiceError};
