//! The control endpoint of a running `provision local`: the gRPC service
//! `provision.local.v1.Control` (`proto/control/control.proto`) on a Unix
//! socket beside the app's instance lock, `<runtime dir>/<app>.sock`. A
//! socket in a directory only its user may enter keeps other users from
//! killing or restarting someone's replicas; gRPC lets `grpcurl -unix`
//! and `provision local status|restart|kill` speak the same service.
//!
//! - `server`: the service as the runner serves it.
//! - `client`: asking it, from the CLI and `bench --chaos`.
//! - `render`: the status as a table and as JSON.

pub mod client;
pub mod render;
pub mod server;

pub use client::{Control, ControlTarget};
