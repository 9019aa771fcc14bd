//! kaudit-node: turns on kube-apiserver audit logging on nodes where the
//! apiserver runs as a systemd service, and keeps it right.
//!
//! Data flows one way, one module per phase (docs/architecture.md draws it
//! whole):
//!
//! ```text
//! config.toml ──► config::Settings ───────────┐
//! unit + drop-ins, files ──► observe::Observed ├─► plan::plan() ────────┐
//! preset | file ──► policy::validate ─────────┘   plan::plan_remove() ─┤
//!                                                                       ▼
//!                     apply::execute(Plan) ──► effects, systemd, prove ──► apply::Report
//! ```
//!
//! Everything up to the `Plan` is pure or reads only under a [`root::Root`];
//! one executor carries out every plan, and rolls back by how far it got.

pub mod apiserver;
pub mod apply;
pub mod check;
pub mod cli;
pub mod config;
pub mod dropin;
pub mod effects;
pub mod error;
pub mod events;
pub mod failpoint;
pub mod flags;
pub mod glob;
pub mod kubeconfig;
pub mod lock;
pub mod logging;
pub mod observe;
pub mod plan;
pub mod policy;
pub mod prove;
pub mod report;
pub mod root;
mod suggest;
pub mod systemd;
pub mod trust;
pub mod unit;
pub mod verify;

#[cfg(test)]
mod testutil;
