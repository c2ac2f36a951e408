//! ferrochat: a drop-in Rust replacement for the legacy Django + Channels chat app.
//!
//! Data flows one way: request → session → user → handler → database / layer → sockets.
//! `django` and `db` are leaves anyone may use; nothing below `web` knows about HTTP.

pub mod auth;
pub mod chat;
pub mod cli;
pub mod config;
pub mod db;
pub mod django;
pub mod layer;
pub mod web;
