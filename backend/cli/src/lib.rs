//! The `brain2` command's parts: the local server (with the workers and the Prometheus
//! metrics listener), the local AWS emulators wired to it, and development tokens. None of
//! this is linked into a Lambda function.

pub mod local_stack;
pub mod metrics_listener;
pub mod serve;
pub mod token;
