//! Brain2: a personal knowledge graph API on single-table DynamoDB.
//!
//! Layout: `domain` (pure model), `ports` (what the application needs), `app` (use cases),
//! `adapters` (DynamoDB, EventBridge), `http` (the axum router), `lambda` (the Lambda
//! entry adapter), `bootstrap` (wiring), `devstack` (local emulators).

pub mod adapters;
pub mod app;
pub mod bootstrap;
pub mod config;
pub mod costs;
pub mod devstack;
pub mod domain;
pub mod flags;
pub mod http;
pub mod lambda;
pub mod ports;
pub mod telemetry;
pub mod worker;
