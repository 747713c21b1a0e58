//! Nothing to call: this crate exists for its `Cargo.toml`, which asks for
//! one feature set of the dependencies the workspace's packages share. Every
//! package depends on it, so any subset of them that cargo builds resolves
//! those dependencies the same way and reuses what an earlier build compiled.
