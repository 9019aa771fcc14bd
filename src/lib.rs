//! kaudit-node: turns on kube-apiserver audit logging on nodes where the
//! apiserver runs as a systemd service, and keeps it right.
//!
//! Data flows one way, one module per phase:
//!
//! ```text
//! config.toml ──► config::Settings ─┐
//! unit + drop-ins ──► unit::UnitView ├─► plan::plan() ──► Plan ──► (apply)
//! preset | file ──► policy (validated)┘
//! ```
//!
//! Everything up to the `Plan` is pure or reads only under a [`root::Root`].

pub mod error;
pub mod policy;
pub mod root;
pub mod unit;
