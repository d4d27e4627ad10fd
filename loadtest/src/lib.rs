//! The load harness behind `make loadtest`: goose scenarios against a local stack per
//! optimisation profile (or a deployed API), with the AWS cost of every request, the
//! Lambda function's cold start and package size, real-time updates over WebSockets, and
//! the reports.

pub mod bus;
pub mod cloudwatch;
pub mod config;
pub mod lambda_emulator;
pub mod lambda_figures;
pub mod local_server;
pub mod local_stack;
pub mod package;
pub mod prometheus;
pub mod realtime;
pub mod report;
pub mod run;
pub mod scenarios;
pub mod seed;
pub mod tiers;
