//! `provision`'s commands that need no cloud: `local` runs the stack on
//! this machine the way ECS with Cloud Map runs it, `call` makes one call
//! through discovery, `bench` load-tests a service through it.
//!
//! A crate apart from the `provision` binary (`provisioner/src/main.rs`,
//! which joins these commands with provision-aws's): with the `aws`
//! feature, this crate's optimised build then runs beside the AWS SDK's
//! instead of waiting for it, and a library compiles as soon as its
//! dependencies' metadata is there, while the services' crates still build.
//!
//! # Layout
//! - `local/`: `provision local`: the runner (a supervisor per service and
//!   one per store), health checks, the DNS server's registry, the local
//!   autoscaler, the control endpoint, process usage.
//! - `call.rs`, `reflect.rs`: `provision call` through discovery (or TLS to
//!   an ingress), with the method's types from the server's reflection.
//! - `bench/`: `provision bench`: the load loop, faults (`chaos`), the raw
//!   codec, what a run measured, and its report; `rate.rs` its schedules.
//! - The stack file is the `stack-spec` crate (`provisioner/spec`), the AWS
//!   commands the `provision-aws` crate (`provisioner/aws`).

pub mod bench;
pub mod call;
pub mod local;
mod rate;
mod reflect;

use stack_spec as spec;

pub use bench::BenchArgs;
pub use call::{CallArgs, TlsEndpoint};
pub use local::LocalArgs;
