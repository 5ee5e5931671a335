//! # apiauth
//!
//! API authentication for axum and Tower, one layer per method, with extractors for scopes.
//! This facade re-exports the core and, behind one feature each, every method crate.
//! See the README for the feature table and examples.
#![forbid(unsafe_code)]

pub use apiauth_core::*;
