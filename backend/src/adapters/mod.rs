//! Adapters: the ports implemented on AWS services.

pub mod aws;
pub mod dynamodb;
pub mod eventbridge;
pub mod provision;
