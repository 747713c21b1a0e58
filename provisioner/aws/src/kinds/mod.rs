//! The resource kinds provision manages on AWS, one module each; the graph
//! of how they depend on each other is [`super::graph::KINDS`].

pub mod cloud_map_service;
pub mod cluster;
pub mod ecs_service;
pub mod ingress;
pub mod log_group;
pub mod namespace;
pub mod pipeline;
pub mod repository;
pub mod role;
pub mod scaling;
pub mod security_group;
pub mod store;
pub mod task_definition;
