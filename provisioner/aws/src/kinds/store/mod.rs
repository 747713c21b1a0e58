//! The stack's Redis stores on AWS: for each `[[store]]`, an ElastiCache
//! replication group (cluster mode off, TLS, AUTH, encrypted at rest) in a
//! cache subnet group over the stack's subnets, behind a security group
//! that admits the store's port from the tasks' group only, its URL (with
//! the AUTH token) in a Secrets Manager secret that ECS hands the services
//! that use it.

pub mod replication_group;
pub mod secret;
pub mod security_group;
pub mod subnet_group;
