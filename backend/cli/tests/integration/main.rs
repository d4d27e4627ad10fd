//! Integration suite: the router against DynamoDB Local and moto, the Lambda adapter,
//! and a real TCP round trip through `brain2 serve`. One emulator set for the binary.

mod api;
mod auth;
mod edges;
mod events;
mod flags;
mod lambda;
mod serve;
mod support;
mod tenancy;
mod workers;
