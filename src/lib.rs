//! espbridge: a self-hosted e-mail and SMS messaging server that speaks the wire
//! protocols of legacy e-mail service providers.
//!
//! Layers (see docs/decisions.md and ARCHITECTURE.md): protocol modules translate,
//! `domain` decides, `db` stores.

pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod intake;
pub mod metrics;
pub mod protocols;
pub mod render;
pub mod sender;
pub mod server;
pub mod web;
pub mod xml;

pub use error::{Error, Result};
