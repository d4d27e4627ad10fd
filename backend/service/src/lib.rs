//! Brain2: a personal knowledge graph API on single-table DynamoDB.
//!
//! Layout: `domain` (pure model), `ports` (what the application needs), `app` (use cases),
//! `adapters` (DynamoDB, EventBridge, the read caches), `http` (the axum router),
//! `worker` (queue messages into the workers), `outbox` (the table's stream into bus
//! events), `realtime` (changes to WebSocket clients), `telemetry` (logs and metrics), `costs`
//! (the per-request AWS cost ledger), `flags` (the optimisation switches), `config`
//! (shared value parsers of the settings), `deadline` (the end-to-end deadline of a
//! request) and `bootstrap` (settings and wiring). The Lambda entry points, the CLI and the
//! local emulators are crates of their own.

pub mod adapters;
pub mod app;
pub mod bootstrap;
pub mod config;
pub mod costs;
pub mod deadline;
pub mod domain;
pub mod flags;
pub mod http;
pub mod outbox;
pub mod ports;
pub mod realtime;
pub mod telemetry;
pub mod worker;
