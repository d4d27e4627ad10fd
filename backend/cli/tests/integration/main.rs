//! Integration suite: the router against DynamoDB Local and moto (or the emulators
//! `BRAIN2_TEST_STACK` names: `make test-containers`), the Lambda adapter,
//! and a real TCP round trip through `brain2 serve`. One emulator set for the binary.

mod api;
mod auth;
mod broadcast;
mod contract;
mod edges;
mod events;
mod faults;
mod flags;
mod graph_paging;
mod lambda;
mod outbox;
mod overload;
mod races;
mod realtime;
mod schema;
mod serve;
mod shared_cache;
mod similarity;
mod support;
mod tenancy;
mod workers;
