//! The stack's gRPC contracts, compiled once from the `.proto` files beside
//! this crate. Every service and client takes its generated code from here so
//! that there is exactly one definition of each message on the wire.

/// The game service `rpc.Rpc` (package `rpc`).
pub mod rpc {
    tonic::include_proto!("rpc");
}

/// Champions (package `champion`), used by `rpc.Rpc`.
pub mod champion {
    tonic::include_proto!("champion");
}

/// Battle fields (package `battle_field`), used by `rpc.Rpc`.
pub mod battle_field {
    tonic::include_proto!("battle_field");
}

/// The ranking service `ranking.v1.Ranking`.
pub mod ranking {
    /// Version 1 of the contract (package `ranking.v1`).
    pub mod v1 {
        tonic::include_proto!("ranking.v1");
    }
}

/// The control service of a running `provision local`
/// (`provision.local.v1.Control`), which `provision local status`, `restart`
/// and `kill` speak over its Unix socket.
pub mod control {
    /// Version 1 (package `provision.local.v1`).
    pub mod v1 {
        tonic::include_proto!("provision.local.v1");
    }
}

/// The encoded `FileDescriptorSet` of the control service alone, for its
/// reflection (`grpcurl -unix ... list`) and for its JSON status.
pub const CONTROL_FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/control_descriptors.bin"));

/// The encoded `FileDescriptorSet` of every contract, for server reflection:
/// with it grpcurl can list and call the services without the `.proto` files.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));
