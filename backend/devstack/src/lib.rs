//! Local AWS for development and tests, never linked into a Lambda function: DynamoDB
//! Local and moto_server started as child processes on free loopback ports
//! ([`emulators`]), or DynamoDB Local and LocalStack in containers ([`containers`]), a
//! redis-server process as the shared cache ([`cache_server`]), and the table, bus, rules
//! and queues the service expects created on them ([`provision`]). In AWS the
//! infrastructure stack owns those resources.

pub mod cache_server;
pub mod containers;
pub mod emulators;
pub mod local_aws;
pub mod provision;

pub use cache_server::CacheServer;
pub use containers::ContainerStack;
pub use emulators::{DevStack, DevStackError, DevStackPaths, tie_to_this_process};
pub use local_aws::{LocalAws, TEST_STACK_ENV};
pub use provision::{ProvisionError, Provisioned, provision};
