//! What kaudit-node asks of systemd, behind a small trait, and its one real
//! implementation over D-Bus (zbus, the system bus; `DBUS_SYSTEM_BUS_ADDRESS`
//! is honoured, which is how the tests reach a container's systemd).
//!
//! Proxies are hand-written for the dozen members needed (signatures as in
//! org.freedesktop.systemd1(5)), with property caching off so every read is fresh and no
//! match rules are added.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use zbus::proxy::CacheProperties;
use zbus::{OwnedObjectPath, OwnedVariant as OwnedValue};

use crate::error::{Error, ExitCode, Result};

/// The state of a unit and its service, as systemd reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct UnitStatus {
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    pub fragment_path: String,
    pub drop_in_paths: Vec<String>,
    pub need_daemon_reload: bool,
    pub main_pid: u32,
    pub n_restarts: u32,
    /// `ExecStart`'s argv, as systemd will exec it (specifiers expanded,
    /// `$VAR` kept for exec time). Empty when not a service.
    pub exec_start: Vec<Vec<String>>,
}

impl UnitStatus {
    pub fn is_active(&self) -> bool {
        self.active_state == "active"
    }
}

/// How a restart job ended (`JobRemoved`'s result): `done`, `canceled`,
/// `timeout`, `failed`, `dependency` or `skipped`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobResult(pub String);

impl JobResult {
    pub fn is_done(&self) -> bool {
        self.0 == "done"
    }
}

/// The seam: what kaudit-node needs from systemd.
pub trait Systemd {
    /// `Manager.Reload` (daemon-reload). Returns after systemd has re-read
    /// every unit file.
    fn reload(&mut self) -> Result<()>;
    /// Loads (if needed) and reads the unit's state.
    fn status(&mut self, unit: &str) -> Result<UnitStatus>;
    /// `RestartUnit(unit, "replace")` and waits for its `JobRemoved`,
    /// subscribed before the call so the signal cannot be missed.
    fn restart(&mut self, unit: &str, timeout: Duration) -> Result<JobResult>;
    /// `ResetFailedUnit`: clears a failed state and the start-limit counter.
    fn reset_failed(&mut self, unit: &str) -> Result<()>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
trait Manager {
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;
    fn reload(&self) -> zbus::Result<()>;
    fn subscribe(&self) -> zbus::Result<()>;
    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: OwnedObjectPath,
        unit: String,
        result: String,
    ) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.freedesktop.DBus.Properties",
    default_service = "org.freedesktop.systemd1"
)]
trait Props {
    fn get_all(&self, interface: &str) -> zbus::Result<HashMap<String, OwnedValue>>;
}

/// systemd over the system bus.
pub struct Dbus {
    conn: zbus::Connection,
    /// `Subscribe` once per connection: a second call fails with
    /// `AlreadySubscribed`.
    subscribed: std::cell::Cell<bool>,
}

fn bus_err(what: &str, e: zbus::Error) -> Error {
    Error::new(ExitCode::Unavailable, format!("systemd: {what}: {e}"))
}

impl Dbus {
    /// Connects to the system bus (`DBUS_SYSTEM_BUS_ADDRESS` if set).
    /// Every call times out after `call_timeout`.
    pub fn connect(call_timeout: Duration) -> Result<Dbus> {
        let conn = zbus::block_on(async {
            zbus::connection::Builder::system()
                .method_timeout(call_timeout)
                .build()
                .await
        })
        .map_err(|e| {
            Error::new(
                ExitCode::Unavailable,
                format!(
                    "cannot reach systemd on the system bus ({}): {e}",
                    std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
                        .unwrap_or_else(|_| "unix:path=/run/dbus/system_bus_socket".into())
                ),
            )
        })?;
        Ok(Dbus {
            conn,
            subscribed: std::cell::Cell::new(false),
        })
    }

    async fn manager(&self) -> zbus::Result<ManagerProxy<'_>> {
        ManagerProxy::builder(&self.conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
    }
}

fn prop<T: TryFrom<OwnedValue>>(map: &mut HashMap<String, OwnedValue>, key: &str) -> Option<T> {
    map.remove(key).and_then(|v| T::try_from(v).ok())
}

type ExecTuple = (String, Vec<String>, bool, u64, u64, u64, u64, u32, i32, i32);

impl Systemd for Dbus {
    fn reload(&mut self) -> Result<()> {
        zbus::block_on(async { self.manager().await?.reload().await })
            .map_err(|e| bus_err("daemon-reload", e))
    }

    fn status(&mut self, unit: &str) -> Result<UnitStatus> {
        zbus::block_on(async {
            let m = self.manager().await?;
            let path = m.load_unit(unit).await?;
            let props = PropsProxy::builder(&self.conn)
                .path(path)
                .cache_properties(CacheProperties::No)
                .build()
                .await?;
            let mut u = props.get_all("org.freedesktop.systemd1.Unit").await?;
            let mut st = UnitStatus {
                load_state: prop(&mut u, "LoadState").unwrap_or_default(),
                active_state: prop(&mut u, "ActiveState").unwrap_or_default(),
                sub_state: prop(&mut u, "SubState").unwrap_or_default(),
                fragment_path: prop(&mut u, "FragmentPath").unwrap_or_default(),
                drop_in_paths: prop(&mut u, "DropInPaths").unwrap_or_default(),
                need_daemon_reload: prop(&mut u, "NeedDaemonReload").unwrap_or_default(),
                ..UnitStatus::default()
            };
            if unit.ends_with(".service") && st.load_state == "loaded" {
                let mut s = props.get_all("org.freedesktop.systemd1.Service").await?;
                st.main_pid = prop(&mut s, "MainPID").unwrap_or_default();
                st.n_restarts = prop(&mut s, "NRestarts").unwrap_or_default();
                let exec: Vec<ExecTuple> = prop(&mut s, "ExecStart").unwrap_or_default();
                st.exec_start = exec.into_iter().map(|t| t.1).collect();
            }
            Ok::<_, zbus::Error>(st)
        })
        .map_err(|e| bus_err(&format!("reading {unit}"), e))
    }

    fn restart(&mut self, unit: &str, timeout: Duration) -> Result<JobResult> {
        use futures_util::StreamExt;
        zbus::block_on(async {
            let m = self.manager().await?;
            if !self.subscribed.get() {
                m.subscribe().await?;
                self.subscribed.set(true);
            }
            let mut removed = m.receive_job_removed().await?;
            let job = m.restart_unit(unit, "replace").await?;
            crate::failpoint::hit("restart-job");
            let deadline = Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let next = zruntime_timeout(left, removed.next()).await;
                match next {
                    None => return Ok(JobResult("timeout".into())),
                    Some(None) => {
                        return Err(zbus::Error::Failure(
                            "the bus closed while waiting for the restart job".into(),
                        ));
                    }
                    Some(Some(sig)) => {
                        let args = sig.args()?;
                        if *args.job() == job {
                            return Ok(JobResult(args.result().clone()));
                        }
                    }
                }
            }
        })
        .map_err(|e| bus_err(&format!("restarting {unit}"), e))
    }

    fn reset_failed(&mut self, unit: &str) -> Result<()> {
        zbus::block_on(async { self.manager().await?.reset_failed_unit(unit).await })
            .map_err(|e| bus_err(&format!("reset-failed {unit}"), e))
    }
}

/// `Some(value)` if `fut` completes within `d`, `None` on timeout. Uses
/// the runtime zbus already runs on (zruntime's shared runtime).
async fn zruntime_timeout<F: std::future::Future>(d: Duration, fut: F) -> Option<F::Output> {
    match zruntime::SharedRuntime::current() {
        Ok(rt) => rt.timeout(d, fut).await.ok(),
        // No timer available: rely on the connection's method timeout.
        Err(_) => Some(fut.await),
    }
}
