//! What kaudit-node knows of the kube-apiserver it configures: which
//! program and release the unit runs ([`identity`]), which audit flags that
//! release has ([`version`]), how it reads flag names ([`pflag`]), and
//! whether it serves ([`ready`]).

pub mod identity;
pub mod pflag;
pub mod ready;
pub mod version;
