//! The parts of the command line every `provision` command shares: one
//! output switch (`-o text|json`), one way to write a duration (`30s`,
//! `5m`), and colour that appears only on a terminal and never with
//! `NO_COLOR`. A crate of its own so that the local and the AWS commands,
//! which build side by side, both use it without one waiting for the other.

pub mod colour;
pub mod duration;
pub mod output;

pub use output::Output;
