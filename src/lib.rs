//! heartwire: a high-availability cluster agent (see DESIGN.md).
//!
//! The binary is `src/main.rs`; this library holds its layers so that integration tests,
//! the simulator and benches can use them: [`wire`] (frame formats, no I/O), [`core`] (the
//! sans-IO cluster state machine), [`config`] (TOML to validated config), [`daemon`] (the
//! mio event loop over `heartwire-hal`), [`storage`] (reservations and mounts, run in
//! children), [`ctl`] (control socket and CLI client) and [`web`] (the `heartwire-web`
//! process: metrics and the live page).
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod core;
pub mod ctl;
pub mod daemon;
pub mod storage;
pub mod web;
pub mod wire;
