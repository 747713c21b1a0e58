//! Compiles the `.proto` files with protox (pure Rust, so no system `protoc`)
//! and keeps the encoded descriptor set for server reflection.

use std::{env, fs, path::PathBuf};

use prost::Message;

/// Every file a client of the services may ask for; imports are resolved
/// from this folder, as `-import-path proto` does for grpcurl.
const PROTOS: &[&str] = &["rpc/rpc.proto", "ranking/ranking.proto"];
/// The control service of `provision local`: a descriptor set of its own,
/// so that the services' reflection does not list it.
const CONTROL_PROTOS: &[&str] = &["control/control.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let descriptors = protox::compile(PROTOS, [&root])?;
    fs::write(out_dir.join("descriptors.bin"), descriptors.encode_to_vec())?;

    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(descriptors)?;

    let control = protox::compile(CONTROL_PROTOS, [&root])?;
    fs::write(out_dir.join("control_descriptors.bin"), control.encode_to_vec())?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(control)?;

    for dir in ["rpc", "ranking", "control"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    Ok(())
}
