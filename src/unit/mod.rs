//! The apiserver's systemd unit as the vendor ships it: fragment + drop-ins
//! → [`UnitView`], read under a [`Root`] the way systemd 252 reads it.
//!
//! * [`parse`]: the unit file syntax (sections, continuations, comments).
//! * [`locate`](locate::UNIT_SEARCH_PATH): the fragment and the drop-ins,
//!   in systemd's priority and application order, symlinks resolved inside
//!   the root.
//! * [`exec`]: `ExecStart=` words, each with its raw text and its unquoted
//!   value; stripping `--audit-*` flags; rendering kaudit-node's
//!   `ExecStart=` so that systemd sees the vendor argv unchanged.
//! * [`quote`]: systemd's word splitting and [`quote_word`] for the values
//!   kaudit-node appends.
//! * [`env`]: `Environment=` / `EnvironmentFile=` and `$VAR` expansion, to
//!   find `--audit-*` flags hidden in variables.
//!
//! The "vendor view" is the unit with every drop-in applied in order except
//! kaudit-node's own (`/etc/systemd/system/NAME.d/OURS`), which is reported
//! separately. Type-level drop-ins (`service.d/`) and dash-prefix drop-ins
//! (`kube-.service.d/`) are included: systemd 252 applies them to every
//! service (`man systemd.unit`), and `systemd-analyze verify` lists them in
//! the unit's `DropIn Path`s.

mod env;
mod exec;
mod locate;
mod parse;
mod quote;

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use crate::apiserver::pflag;
use crate::error::{Error, Result};
use crate::root::Root;

pub use exec::{
    BOOLEAN_AUDIT_FLAGS, Command, EnvRef, RemovedFlag, VALUE_AUDIT_FLAGS, Word,
    is_known_audit_flag, render_exec_start,
};
pub use locate::UNIT_SEARCH_PATH;
pub use parse::{Entry, UnitFile, parse_unit_file};
pub use quote::quote_word;

use env::EnvSource;
use locate::{DropIn, Found, chase};

/// `ProtectSystem=` (`man systemd.exec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProtectSystem {
    /// Off (the default).
    #[default]
    No,
    /// `yes`/`true`: `/usr`, `/boot`, `/efi` read-only.
    Yes,
    /// `full`: also `/etc`.
    Full,
    /// `strict`: everything but `/dev`, `/proc`, `/sys`.
    Strict,
}

/// An `--audit-*` flag that reaches the apiserver through a variable used
/// in `ExecStart=`. kaudit-node cannot strip it without editing the
/// admin's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvAuditFlag {
    /// The variable name (`KUBE_API_ARGS`).
    pub variable: String,
    /// Referenced as `$VAR` (split into words) rather than `${VAR}`.
    pub whole_word: bool,
    /// The file whose assignment is in effect: an `EnvironmentFile=` file,
    /// or the unit file with the `Environment=` line.
    pub source: PathBuf,
    pub line: usize,
    /// The flag as the apiserver receives it (`--audit-log-path=/x`, or
    /// `--audit-log-path /x` for the two-word form).
    pub flag: String,
}

impl fmt::Display for EnvAuditFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let var = if self.whole_word {
            format!("${}", self.variable)
        } else {
            format!("${{{}}}", self.variable)
        };
        write!(
            f,
            "{}:{}: {var} passes {}",
            self.source.display(),
            self.line,
            self.flag
        )
    }
}

/// The unit as the vendor (and the admin) configured it, without
/// kaudit-node's drop-in.
#[derive(Debug, Clone)]
pub struct UnitView {
    /// The unit name asked for.
    pub name: String,
    /// The fragment's node path (for a linked unit, the link's target).
    pub fragment: PathBuf,
    /// Drop-ins applied, in order, kaudit-node's excluded (masks and empty
    /// files included, as systemd lists them).
    pub dropins: Vec<PathBuf>,
    /// kaudit-node's drop-in: `/etc/systemd/system/NAME.d/OURS`.
    pub ours: PathBuf,
    pub ours_present: bool,
    /// The effective command (last assignment wins, empty resets).
    pub exec_start: Command,
    /// File and line of the `ExecStart=` it came from.
    pub exec_start_source: (PathBuf, usize),
    /// That `ExecStart=` value, continuations joined.
    pub exec_start_raw: String,
    pub user: Option<String>,
    pub group: Option<String>,
    pub service_type: Option<String>,
    /// Effective: `DynamicUser=yes` implies `strict`.
    pub protect_system: ProtectSystem,
    /// Effective, normalised: `no`, `yes`, `read-only` or `tmpfs`; `None`
    /// when unset. `DynamicUser=yes` implies `read-only`.
    pub protect_home: Option<String>,
    /// Effective: `DynamicUser=yes` implies it.
    pub private_tmp: bool,
    /// Entries keep their `-` / `+` prefixes; paths are simplified.
    pub read_only_paths: Vec<String>,
    pub read_write_paths: Vec<String>,
    pub inaccessible_paths: Vec<String>,
    pub dynamic_user: bool,
    pub logs_directory: Vec<String>,
    /// `EnvironmentFile=` entries in order: path as written (without the
    /// `-`), and whether it is optional (`-`).
    pub environment_files: Vec<(String, bool)>,
    /// `--audit-*` flags passed through variables used in `ExecStart=`.
    pub env_audit_flags: Vec<EnvAuditFlag>,
    /// Variables `ExecStart=` expands (`$VAR` and `${VAR}`), in order.
    pub exec_start_vars: Vec<String>,
    /// The first argument after `argv[0]` as the process gets it, variables
    /// from the unit's environment expanded (hyperkube's component name).
    pub first_argument: Option<String>,
    /// Drop-ins that would override kaudit-node's `ExecStart=`: those that
    /// sort after it and assign `ExecStart=`, and a file with its name in a
    /// higher-priority directory (which masks it).
    pub overriding_dropins: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

impl UnitView {
    /// The values the vendor's own command line gives the audit flag
    /// `--NAME`, in either form (`--NAME=V`, `--NAME V`), in `ExecStart=`
    /// and through variables: what the apiserver runs with once
    /// kaudit-node's drop-in is gone.
    pub fn vendor_audit_flag_values(&self, name: &str) -> Vec<String> {
        let flag = format!("--{name}");
        let (_, removed) = self.exec_start.strip_audit_flags();
        let in_exec = removed
            .into_iter()
            .filter(|f| f.name == flag)
            .filter_map(|f| f.value);
        let in_env = self.env_audit_flags.iter().filter_map(|f| {
            let rest = f.flag.strip_prefix(&flag)?;
            rest.strip_prefix('=')
                .or(rest.strip_prefix(' '))
                .map(str::to_string)
        });
        in_exec.chain(in_env).collect()
    }
}

/// Checks a service unit name: `.service` suffix, systemd's characters
/// (ASCII letters, digits, `:`, `-`, `_`, `.`, `\`), at most 255 bytes, no
/// templates or instances (`foo@.service`, `foo@bar.service`).
pub fn validate_unit_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::config(format!("unit name {name:?}: {why}")));
    if name.is_empty() {
        return bad("is empty");
    }
    if name.contains('/') {
        return bad("must be a unit name such as kube-apiserver.service, not a path");
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return bad(&format!(
            "contains the character {c:?}; unit names cannot contain whitespace or control characters"
        ));
    }
    if name.len() > 255 {
        return bad("is longer than 255 bytes");
    }
    let Some(prefix) = name.strip_suffix(".service") else {
        return bad("must end in \".service\"");
    };
    if prefix.is_empty() {
        return bad("has nothing before \".service\"");
    }
    if prefix.contains('@') {
        return bad(
            "template units and their instances (name@instance.service) are not supported by kaudit-node",
        );
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\".contains(*c)))
    {
        return bad(&format!(
            "contains {c:?}; systemd allows only ASCII letters, digits, \":\", \"-\", \"_\", \".\" and \"\\\""
        ));
    }
    Ok(())
}

/// systemd's `parse_boolean`.
fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

/// Expands the specifiers that are fixed for the system manager and make
/// sense in paths; `None` when another one is used.
fn expand_path_specifiers(s: &str, unit: &str) -> Option<String> {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let prefix = unit.strip_suffix(".service").unwrap_or(unit);
        match it.next() {
            None => out.push('%'),
            Some('%') => out.push('%'),
            Some('C') => out.push_str("/var/cache"),
            Some('E') => out.push_str("/etc"),
            Some('L') => out.push_str("/var/log"),
            Some('S') => out.push_str("/var/lib"),
            Some('t') => out.push_str("/run"),
            Some('T') => out.push_str("/tmp"),
            Some('V') => out.push_str("/var/tmp"),
            Some('n') => out.push_str(unit),
            Some('N') | Some('p') => out.push_str(prefix),
            Some(_) => return None,
        }
    }
    Some(out)
}

/// systemd's `path_simplify`: no `//`, no `.` components, no trailing `/`.
/// `None` for a path with `..` (systemd ignores it as not normalised).
fn simplify_path(p: &str) -> Option<String> {
    let mut out = String::new();
    for c in p.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if c == ".." {
            return None;
        }
        out.push('/');
        out.push_str(c);
    }
    Some(if out.is_empty() { "/".to_string() } else { out })
}

/// Applies one list-of-paths assignment (`ReadWritePaths=` and friends).
fn apply_path_list(
    list: &mut Vec<String>,
    e: &Entry,
    loc: &str,
    unit: &str,
    warnings: &mut Vec<String>,
) {
    if e.value.is_empty() {
        list.clear();
        return;
    }
    let Ok((words, _)) = quote::split_values(&e.value) else {
        warnings.push(format!(
            "{loc}: {}= has unbalanced quoting; systemd ignores it",
            e.key
        ));
        return;
    };
    for w in words {
        let mut rest = w.as_str();
        let mut prefix = String::new();
        if let Some(r) = rest.strip_prefix('-') {
            prefix.push('-');
            rest = r;
        }
        if let Some(r) = rest.strip_prefix('+') {
            prefix.push('+');
            rest = r;
        }
        let Some(expanded) = expand_path_specifiers(rest, unit) else {
            warnings.push(format!("{loc}: {}={w}: specifiers other than %%, %C, %E, %L, %S, %t, %T, %V, %n, %N, %p are not resolved; entry kept as written", e.key));
            list.push(w.clone());
            continue;
        };
        match simplify_path(&expanded) {
            Some(p) if expanded.starts_with('/') => list.push(format!("{prefix}{p}")),
            _ => warnings.push(format!(
                "{loc}: {}={w}: not an absolute, normalised path; systemd ignores it",
                e.key
            )),
        }
    }
}

fn read_text(root: &Root, node: &Path, real: &Path) -> Result<String> {
    let bytes =
        fs::read(root.host_path(real)).map_err(|e| Error::read(&node.display().to_string(), &e))?;
    String::from_utf8(bytes)
        .map_err(|_| Error::data(format!("{}: is not valid UTF-8", node.display())))
}

/// Expands an `EnvironmentFile=` glob under the root (sorted, like glob(3)).
fn glob_files(root: &Root, pattern: &str) -> Result<Vec<PathBuf>> {
    let mut cur = vec![PathBuf::from("/")];
    for c in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for base in cur {
            if !crate::glob::has_wildcards(c) {
                next.push(base.join(c));
                continue;
            }
            let Found::Dir(real) = chase(root, &base)? else {
                continue;
            };
            let Ok(rd) = fs::read_dir(root.host_path(&real)) else {
                continue;
            };
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect();
            names.sort();
            next.extend(
                names
                    .into_iter()
                    .filter(|n| crate::glob::matches_name(c, n))
                    .map(|n| base.join(n)),
            );
        }
        cur = next;
    }
    let mut out = Vec::new();
    for p in cur {
        if matches!(chase(root, &p)?, Found::File(..)) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Where a node that runs kube-apiserver as a static pod keeps its
/// manifest (kubeadm; RKE2). Such a node has no unit for kaudit-node to
/// configure, and the error says so instead of only "no such unit".
pub const STATIC_POD_MANIFESTS: [&str; 2] = [
    "/etc/kubernetes/manifests/kube-apiserver.yaml",
    "/var/lib/rancher/rke2/agent/pod-manifests/kube-apiserver.yaml",
];

/// The error for a unit that is in none of the search directories.
fn not_found(root: &Root, name: &str) -> Error {
    let under = if root.is_system() {
        String::new()
    } else {
        format!(" under the root {}", root.dir().display())
    };
    let searched = format!(
        "looked in the {} directories of systemd's unit search path{under}, {} to {}",
        UNIT_SEARCH_PATH.len(),
        UNIT_SEARCH_PATH[0],
        UNIT_SEARCH_PATH[UNIT_SEARCH_PATH.len() - 1]
    );
    match STATIC_POD_MANIFESTS
        .iter()
        .find(|m| locate::lexists(root, Path::new(m)))
    {
        Some(manifest) => Error::no_input(format!(
            "{name}: no such unit file ({searched}), and {manifest} exists: this node runs \
             kube-apiserver as a static pod, which kaudit-node does not manage (it configures \
             kube-apiserver run by systemd); set the --audit-* flags and the volumes for the \
             policy and the log in the manifest (kubeadm: apiServer.extraArgs and \
             apiServer.extraVolumes in ClusterConfiguration)"
        )),
        None => Error::no_input(format!(
            "{name}: no such unit file ({searched}); is `unit` in the configuration right? \
             (`systemctl cat {name}` shows where systemd finds a unit)"
        )),
    }
}

/// Finds the fragment: `(node path, canonical name)`.
fn find_fragment(
    root: &Root,
    dirs: &[locate::SearchDir],
    name: &str,
    warnings: &mut Vec<String>,
) -> Result<(PathBuf, String)> {
    for sd in dirs {
        let node = sd.node.join(name);
        let real = sd.resolved.join(name);
        if !locate::lexists(root, &real) {
            continue;
        }
        let masked = |how: &str| {
            Error::data(format!(
                "{}: {name} is masked ({how}); kaudit-node does not configure a masked unit: unmask it first (systemctl unmask {name})",
                node.display()
            ))
        };
        return match chase(root, &real)? {
            Found::DevNull => Err(masked("a symbolic link to /dev/null")),
            Found::File(_, 0) => Err(masked("an empty file")),
            Found::File(target, _) if target == real => Ok((node, name.to_string())),
            Found::File(target, _) => {
                let canonical = target
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or(name)
                    .to_string();
                if canonical != name {
                    warnings.push(format!(
                        "{}: {name} is an alias of {canonical} ({}); drop-ins of both names apply",
                        node.display(),
                        target.display()
                    ));
                }
                Ok((target, canonical))
            }
            Found::Missing => Err(Error::no_input(format!(
                "{}: is a dangling symbolic link; {name} cannot be loaded",
                node.display()
            ))),
            Found::Dir(_) | Found::Other(_) => Err(Error::data(format!(
                "{}: is not a regular file",
                node.display()
            ))),
        };
    }
    Err(not_found(root, name))
}

/// Reads a unit's fragment and drop-ins under `root` and returns the
/// vendor view: everything applied in systemd's order except kaudit-node's
/// drop-in named `our_dropin_file_name` in `/etc/systemd/system/NAME.d/`.
pub fn load(root: &Root, unit_name: &str, our_dropin_file_name: &str) -> Result<UnitView> {
    validate_unit_name(unit_name)?;
    let ours_name = our_dropin_file_name;
    if !ours_name.ends_with(".conf") || ours_name.contains('/') || ours_name.starts_with('.') {
        return Err(Error::config(format!(
            "{ours_name:?}: a drop-in file name must end in .conf and contain no '/'"
        )));
    }
    let mut warnings = Vec::new();
    let dirs = locate::search_dirs(root)?;
    let (fragment, canonical) = find_fragment(root, &dirs, unit_name, &mut warnings)?;
    let found = dropin_list(root, &dirs, unit_name, &canonical, ours_name, &mut warnings)?;
    let mut overriding_dropins = found.overriding;
    let (files, dropins) = read_unit_files(root, &fragment, &found.vendor, &mut warnings)?;
    for f in &files {
        warnings.extend(f.warnings.iter().cloned());
        let after_ours = f
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.as_bytes() > ours_name.as_bytes());
        if f.path != fragment
            && after_ours
            && f.section("Service").any(|e| e.key == "ExecStart")
            && !overriding_dropins.contains(&f.path)
        {
            overriding_dropins.push(f.path.clone());
        }
    }
    let mut svc = Service::fold(&files, unit_name, &mut warnings)?;
    let (exec_start, src_path, src_line, exec_start_raw) =
        the_command(std::mem::take(&mut svc.execs), &fragment, unit_name, &svc)?;
    let loc = format!("{}:{src_line}", src_path.display());
    command_warnings(&exec_start, &loc, &mut warnings);
    let (env_map, env_files_out) = resolve_environment(root, &svc, unit_name, &mut warnings)?;
    let env = environment_uses(&exec_start, &env_map, &loc, &mut warnings);

    // DynamicUser= implies stricter sandboxing that cannot be turned off.
    if svc.dynamic_user {
        svc.protect_system = ProtectSystem::Strict;
        if matches!(svc.protect_home.as_deref(), None | Some("no")) {
            svc.protect_home = Some("read-only".to_string());
        }
        svc.private_tmp = true;
        warnings.push(format!(
            "{}: DynamicUser=yes implies ProtectSystem=strict, ProtectHome=read-only and PrivateTmp=yes",
            fragment.display()
        ));
    }

    Ok(UnitView {
        name: unit_name.to_string(),
        fragment,
        dropins,
        ours: found.ours,
        ours_present: found.ours_present,
        exec_start,
        exec_start_source: (src_path, src_line),
        exec_start_raw,
        user: svc.user,
        group: svc.group,
        service_type: svc.service_type,
        protect_system: svc.protect_system,
        protect_home: svc.protect_home,
        private_tmp: svc.private_tmp,
        read_only_paths: svc.read_only_paths,
        read_write_paths: svc.read_write_paths,
        inaccessible_paths: svc.inaccessible_paths,
        dynamic_user: svc.dynamic_user,
        logs_directory: svc.logs_directory,
        environment_files: env_files_out,
        env_audit_flags: env.audit_flags,
        exec_start_vars: env.exec_start_vars,
        first_argument: env.first_argument,
        overriding_dropins,
        warnings,
    })
}

/// The unit's drop-ins as systemd orders them, and where kaudit-node's
/// stands among them.
struct DropInList {
    /// The vendor's drop-ins (and a same-named one that masks ours), in order.
    vendor: Vec<DropIn>,
    /// kaudit-node's drop-in, as a node path.
    ours: PathBuf,
    ours_present: bool,
    /// Drop-ins that override kaudit-node's (by name and priority).
    overriding: Vec<PathBuf>,
}

/// The drop-in directories in priority order, each with a sort key that
/// also places kaudit-node's directory when it does not exist yet, then
/// the drop-ins systemd would load from them.
fn dropin_list(
    root: &Root,
    dirs: &[locate::SearchDir],
    unit_name: &str,
    canonical: &str,
    ours_name: &str,
    warnings: &mut Vec<String>,
) -> Result<DropInList> {
    let search_rank = |d: &Path| {
        UNIT_SEARCH_PATH
            .iter()
            .position(|s| Path::new(s) == d)
            .unwrap_or(usize::MAX)
    };
    let mut groups = vec![canonical.to_string()];
    if canonical != unit_name {
        groups.push(unit_name.to_string());
    }
    let mut dlist: Vec<(PathBuf, (usize, usize, usize))> = Vec::new();
    for (g, n) in groups.iter().enumerate() {
        for sd in dirs {
            for (k, dn) in locate::dropin_dir_names(n).into_iter().enumerate() {
                dlist.push((sd.node.join(dn), (g, search_rank(&sd.node), k)));
            }
        }
    }
    for sd in dirs {
        dlist.push((
            sd.node.join("service.d"),
            (groups.len(), search_rank(&sd.node), 0),
        ));
    }
    let ours_group = groups.iter().position(|g| g == unit_name).unwrap_or(0);
    let ours_key = (ours_group, search_rank(Path::new("/etc/systemd/system")), 0);
    let ours = PathBuf::from(format!("/etc/systemd/system/{unit_name}.d/{ours_name}"));
    let ours_present = match chase(root, ours.parent().expect("has a parent"))? {
        Found::Dir(real) => locate::lexists(root, &real.join(ours_name)),
        _ => false,
    };

    let dir_paths: Vec<PathBuf> = dlist.iter().map(|(p, _)| p.clone()).collect();
    let (winners, losers) = locate::find_dropins(root, &dir_paths, warnings)?;
    let key_of = |d: &DropIn| dlist[d.dir_rank].1;

    let mut overriding_dropins = Vec::new();
    let mut vendor: Vec<DropIn> = Vec::new();
    for d in winners {
        if d.name != ours_name {
            vendor.push(d);
            continue;
        }
        if key_of(&d) < ours_key {
            warnings.push(format!(
                "{}: has the same name as kaudit-node's drop-in and a higher priority, so it masks {}",
                d.node.display(),
                ours.display()
            ));
            overriding_dropins.push(d.node.clone());
            vendor.push(d);
        } else if d.node != ours {
            warnings.push(format!(
                "{}: has the same name as kaudit-node's drop-in {} and is masked by it",
                d.node.display(),
                ours.display()
            ));
        }
    }
    for d in losers
        .iter()
        .filter(|d| d.name == ours_name && d.node != ours && key_of(d) > ours_key)
    {
        warnings.push(format!(
            "{}: has the same name as kaudit-node's drop-in {} and is masked by it",
            d.node.display(),
            ours.display()
        ));
    }

    Ok(DropInList {
        vendor,
        ours,
        ours_present,
        overriding: overriding_dropins,
    })
}

/// The fragment and the vendor drop-ins, parsed, and the drop-ins systemd
/// lists (empty and `/dev/null` ones included).
fn read_unit_files(
    root: &Root,
    fragment: &Path,
    vendor: &[DropIn],
    warnings: &mut Vec<String>,
) -> Result<(Vec<UnitFile>, Vec<PathBuf>)> {
    let Found::File(frag_real, _) = chase(root, fragment)? else {
        return Err(Error::no_input(format!(
            "{}: disappeared while it was read",
            fragment.display()
        )));
    };
    let mut files = vec![parse_unit_file(
        fragment,
        &read_text(root, fragment, &frag_real)?,
    )?];
    let mut dropins = Vec::new();
    for d in vendor {
        match chase(root, &d.node)? {
            Found::File(real, size) => {
                if size > 0 {
                    files.push(parse_unit_file(&d.node, &read_text(root, &d.node, &real)?)?);
                }
                dropins.push(d.node.clone());
            }
            Found::DevNull | Found::Missing => dropins.push(d.node.clone()),
            Found::Dir(_) | Found::Other(_) => {
                warnings.push(format!(
                    "{}: is not a regular file; skipped",
                    d.node.display()
                ));
            }
        }
    }
    Ok((files, dropins))
}

/// The `[Service]` settings kaudit-node needs, as systemd folds them over
/// the fragment and the drop-ins, in order (an empty assignment resets a
/// list).
struct Service {
    execs: Vec<(Command, PathBuf, usize, String)>,
    user: Option<String>,
    group: Option<String>,
    service_type: Option<String>,
    protect_system: ProtectSystem,
    protect_home: Option<String>,
    private_tmp: bool,
    dynamic_user: bool,
    read_only_paths: Vec<String>,
    read_write_paths: Vec<String>,
    inaccessible_paths: Vec<String>,
    logs_directory: Vec<String>,
    environment_files: Vec<(String, bool, PathBuf, usize)>,
    environment: Vec<(String, EnvSource)>,
}

impl Service {
    fn fold(files: &[UnitFile], unit_name: &str, warnings: &mut Vec<String>) -> Result<Service> {
        let mut execs: Vec<(Command, PathBuf, usize, String)> = Vec::new();
        let mut user = None;
        let mut group = None;
        let mut service_type = None;
        let mut protect_system = ProtectSystem::No;
        let mut protect_home: Option<String> = None;
        let mut private_tmp = false;
        let mut dynamic_user = false;
        let mut read_only_paths = Vec::new();
        let mut read_write_paths = Vec::new();
        let mut inaccessible_paths = Vec::new();
        let mut logs_directory = Vec::new();
        let mut environment_files: Vec<(String, bool, PathBuf, usize)> = Vec::new();
        let mut environment: Vec<(String, EnvSource)> = Vec::new();
        let nonempty = |v: &str| (!v.is_empty()).then(|| v.to_string());

        for f in files {
            for e in f.section("Service") {
                let loc = format!("{}:{}", f.path.display(), e.line);
                let v = e.value.as_str();
                let mut bool_setting = |target: &mut bool| match parse_bool(v) {
                    Some(b) => *target = b,
                    None => warnings.push(format!(
                        "{loc}: {}={v} is not a boolean; systemd ignores it",
                        e.key
                    )),
                };
                match e.key.as_str() {
                    "ExecStart" => {
                        if v.is_empty() {
                            execs.clear();
                            continue;
                        }
                        let parsed = exec::parse_commands(v).map_err(|err| {
                            Error::data(format!("{loc}: ExecStart=: {}", err.message))
                        })?;
                        for u in &parsed.unknown_escapes {
                            warnings.push(format!("{loc}: ExecStart=: unknown escape sequence kept verbatim in {u} (systemd warns about it)"));
                        }
                        execs.extend(
                            parsed
                                .commands
                                .into_iter()
                                .map(|c| (c, f.path.clone(), e.line, v.to_string())),
                        );
                    }
                    "User" => user = nonempty(v),
                    "Group" => group = nonempty(v),
                    "Type" => service_type = nonempty(v),
                    "ProtectSystem" => match v {
                        "" => protect_system = ProtectSystem::No,
                        "full" => protect_system = ProtectSystem::Full,
                        "strict" => protect_system = ProtectSystem::Strict,
                        _ => match parse_bool(v) {
                            Some(true) => protect_system = ProtectSystem::Yes,
                            Some(false) => protect_system = ProtectSystem::No,
                            None => warnings.push(format!(
                                "{loc}: ProtectSystem={v} is not valid; systemd ignores it"
                            )),
                        },
                    },
                    "ProtectHome" => match v {
                        "" => protect_home = None,
                        "read-only" | "tmpfs" => protect_home = Some(v.to_string()),
                        _ => match parse_bool(v) {
                            Some(b) => {
                                protect_home = Some(if b { "yes" } else { "no" }.to_string())
                            }
                            None => warnings.push(format!(
                                "{loc}: ProtectHome={v} is not valid; systemd ignores it"
                            )),
                        },
                    },
                    "PrivateTmp" => bool_setting(&mut private_tmp),
                    "DynamicUser" => bool_setting(&mut dynamic_user),
                    "ReadOnlyPaths" | "ReadOnlyDirectories" => {
                        apply_path_list(&mut read_only_paths, e, &loc, unit_name, warnings)
                    }
                    "ReadWritePaths" | "ReadWriteDirectories" => {
                        apply_path_list(&mut read_write_paths, e, &loc, unit_name, warnings)
                    }
                    "InaccessiblePaths" | "InaccessibleDirectories" => {
                        apply_path_list(&mut inaccessible_paths, e, &loc, unit_name, warnings)
                    }
                    "LogsDirectory" => {
                        if v.is_empty() {
                            logs_directory.clear();
                        } else if let Ok((words, _)) = quote::split_values(v) {
                            logs_directory.extend(words);
                        } else {
                            warnings.push(format!(
                                "{loc}: LogsDirectory= has unbalanced quoting; systemd ignores it"
                            ));
                        }
                    }
                    "EnvironmentFile" => {
                        if v.is_empty() {
                            environment_files.clear();
                        } else {
                            let (path, optional) = match v.strip_prefix('-') {
                                Some(p) => (p, true),
                                None => (v, false),
                            };
                            environment_files.push((
                                path.to_string(),
                                optional,
                                f.path.clone(),
                                e.line,
                            ));
                        }
                    }
                    "Environment" => {
                        if v.is_empty() {
                            environment.clear();
                            continue;
                        }
                        let Ok((words, _)) = quote::split_values(v) else {
                            warnings.push(format!(
                                "{loc}: Environment= has unbalanced quoting; systemd ignores it"
                            ));
                            continue;
                        };
                        for w in words {
                            let w = w.replace("%%", "%");
                            match w.split_once('=') {
                            Some((k, val)) if env::env_name_is_valid(k) => {
                                environment.retain(|(n, _)| n != k);
                                environment.push((
                                    k.to_string(),
                                    EnvSource {
                                        value: val.to_string(),
                                        path: f.path.clone(),
                                        line: e.line,
                                    },
                                ));
                            }
                            _ => warnings.push(format!(
                                "{loc}: Environment={w}: not a valid assignment; systemd ignores it"
                            )),
                        }
                        }
                    }
                    _ => {}
                }
            }
        }

        Ok(Service {
            execs,
            user,
            group,
            service_type,
            protect_system,
            protect_home,
            private_tmp,
            dynamic_user,
            read_only_paths,
            read_write_paths,
            inaccessible_paths,
            logs_directory,
            environment_files,
            environment,
        })
    }
}

/// The one `ExecStart=` command, with where it was set.
fn the_command(
    mut execs: Vec<(Command, PathBuf, usize, String)>,
    fragment: &Path,
    unit_name: &str,
    svc: &Service,
) -> Result<(Command, PathBuf, usize, String)> {
    let service_type = &svc.service_type;
    Ok(match execs.len() {
        0 => {
            return Err(Error::data(format!(
                "{}: {unit_name} has no ExecStart= once its drop-ins are applied; kaudit-node needs the apiserver's command line",
                fragment.display()
            )));
        }
        1 => execs.pop().expect("one command"),
        n => {
            let from: Vec<String> = execs
                .iter()
                .map(|(_, p, l, _)| format!("{}:{l}", p.display()))
                .collect();
            let why = if service_type.as_deref() == Some("oneshot") {
                "kaudit-node supports a single command only"
            } else {
                "systemd refuses more than one ExecStart= command unless Type=oneshot; a drop-in that replaces ExecStart= must start with an empty \"ExecStart=\" line"
            };
            return Err(Error::data(format!(
                "{unit_name}: {n} ExecStart= commands ({}): {why}",
                from.join(", ")
            )));
        }
    })
}

/// The service's environment variables, with where each was set.
type Environment = HashMap<String, EnvSource>;

/// Environment: `Environment=` first, then the files, which override it.
/// The variables, and the `EnvironmentFile=` settings as written.
fn resolve_environment(
    root: &Root,
    svc: &Service,
    unit_name: &str,
    warnings: &mut Vec<String>,
) -> Result<(Environment, Vec<(String, bool)>)> {
    let environment = svc.environment.clone();
    let environment_files = &svc.environment_files;
    let mut env_map: HashMap<String, EnvSource> = environment.into_iter().collect();
    let mut env_files_out = Vec::new();
    for (path, optional, from, line) in environment_files {
        env_files_out.push((path.clone(), *optional));
        let here = format!("{}:{line}", from.display());
        let Some(expanded) = expand_path_specifiers(path, unit_name) else {
            warnings.push(format!(
                "{here}: EnvironmentFile={path}: specifiers not resolved; file not read"
            ));
            continue;
        };
        if !expanded.starts_with('/') {
            warnings.push(format!(
                "{here}: EnvironmentFile={path}: not an absolute path; systemd ignores it"
            ));
            continue;
        }
        let found = if crate::glob::has_wildcards(&expanded) {
            glob_files(root, &expanded)?
        } else {
            vec![PathBuf::from(&expanded)]
        };
        let mut any = false;
        for node in found {
            match chase(root, &node)? {
                Found::File(real, _) => {
                    any = true;
                    let bytes = match fs::read(root.host_path(&real)) {
                        Ok(b) => b,
                        Err(e) => {
                            warnings.push(format!(
                                "{}: cannot read EnvironmentFile: {e}",
                                node.display()
                            ));
                            continue;
                        }
                    };
                    let (vars, ws) = env::parse_env_file(&bytes);
                    warnings.extend(
                        ws.into_iter()
                            .map(|(l, m)| format!("{}:{l}: {m}", node.display())),
                    );
                    for v in vars {
                        env_map.insert(
                            v.key,
                            EnvSource {
                                value: v.value,
                                path: node.clone(),
                                line: v.line,
                            },
                        );
                    }
                }
                Found::DevNull => any = true,
                Found::Missing => {}
                Found::Dir(_) | Found::Other(_) => warnings.push(format!(
                    "{}: EnvironmentFile is not a regular file",
                    node.display()
                )),
            }
        }
        if !any && !optional {
            warnings.push(format!(
                "{here}: EnvironmentFile={path} does not exist and is not optional (no \"-\" prefix): systemd will refuse to start {unit_name}"
            ));
        }
    }
    Ok((env_map, env_files_out))
}

/// What the command line takes from the environment: the variables it
/// names, its first argument once expanded, and `--audit-*` flags that
/// arrive through variables.
struct EnvironmentUses {
    exec_start_vars: Vec<String>,
    first_argument: Option<String>,
    audit_flags: Vec<EnvAuditFlag>,
}

fn environment_uses(
    exec_start: &Command,
    env_map: &HashMap<String, EnvSource>,
    loc: &str,
    warnings: &mut Vec<String>,
) -> EnvironmentUses {
    let refs = exec_start.env_references();
    let mut exec_start_vars: Vec<String> = Vec::new();
    for r in &refs {
        if !exec_start_vars.contains(&r.name) {
            exec_start_vars.push(r.name.clone());
        }
    }
    let first_argument = exec_start
        .words
        .get(exec_start.first_arg_index())
        .and_then(|w| {
            if !exec_start.expands_env() {
                return Some(w.value.clone());
            }
            match refs
                .iter()
                .find(|r| r.whole_word && w.value == format!("${}", r.name))
            {
                Some(r) => env_map
                    .get(&r.name)
                    .and_then(|src| env::split_relaxed(&src.value).into_iter().next()),
                None => Some(env::replace_env(&w.value, env_map)),
            }
        });
    let mut env_audit_flags = Vec::new();
    for r in &refs {
        let Some(src) = env_map.get(&r.name) else {
            if r.whole_word && !env::env_name_is_valid(&r.name) {
                warnings.push(format!(
                    "{loc}: ${} is not a valid variable name; systemd drops the word",
                    r.name
                ));
            }
            continue;
        };
        let mut push = |flag: String| {
            env_audit_flags.push(EnvAuditFlag {
                variable: r.name.clone(),
                whole_word: r.whole_word,
                source: src.path.clone(),
                line: src.line,
                flag,
            })
        };
        if r.whole_word {
            let parts = env::split_relaxed(&src.value);
            let mut i = 0;
            while i < parts.len() {
                let p = &parts[i];
                if let Some(f) = pflag::long_flag(p).filter(|f| f.name.starts_with("--audit-")) {
                    // Recorded under the name kube-apiserver reads.
                    match f.inline {
                        Some(v) => push(format!("{}={v}", f.name)),
                        None if VALUE_AUDIT_FLAGS.contains(&f.name.as_str())
                            && i + 1 < parts.len() =>
                        {
                            push(format!("{} {}", f.name, parts[i + 1]));
                            i += 1;
                        }
                        None => push(f.name.clone()),
                    }
                }
                i += 1;
            }
        } else {
            let word = &exec_start.words[r.word_index].value;
            let expanded = env::replace_env(word, env_map);
            if !pflag::is_audit_flag_word(word)
                && let Some(f) =
                    pflag::long_flag(&expanded).filter(|f| f.name.starts_with("--audit-"))
            {
                push(match f.inline {
                    Some(v) => format!("{}={v}", f.name),
                    None => f.name,
                });
            }
        }
    }

    EnvironmentUses {
        exec_start_vars,
        first_argument,
        audit_flags: env_audit_flags,
    }
}

/// Warnings about a vendor command line that kaudit-node appends to.
fn command_warnings(c: &Command, loc: &str, warnings: &mut Vec<String>) {
    let name = c.executable_name();
    let next = c.words.get(c.first_arg_index()).map(|w| w.value.as_str());
    let is_apiserver = name == "kube-apiserver"
        || (name == "hyperkube" && matches!(next, Some("kube-apiserver" | "apiserver")));
    if is_apiserver {
    } else if matches!(
        name,
        "sh" | "bash" | "dash" | "ash" | "ksh" | "zsh" | "busybox"
    ) {
        warnings.push(format!(
            "{loc}: ExecStart= runs a shell ({}), not kube-apiserver: flags appended after its script become the script's positional parameters and may never reach the apiserver",
            c.executable()
        ));
    } else {
        warnings.push(format!(
            "{loc}: ExecStart= runs {}, not kube-apiserver (a wrapper script?): flags appended to its command line reach the apiserver only if the wrapper passes them on",
            c.executable()
        ));
    }
    let args = &c.words[c.first_arg_index().min(c.words.len())..];
    if args.iter().any(|w| w.value == "--") {
        warnings.push(format!(
            "{loc}: ExecStart= has a \"--\" argument: what follows it, kaudit-node's flags included, is not parsed as flags by kube-apiserver"
        ));
    }
    for w in args.iter().filter(|w| w.value.starts_with("-audit-")) {
        warnings.push(format!(
            "{loc}: {} has a single dash: kube-apiserver does not read it as --{}",
            w.raw,
            &w.value[1..]
        ));
    }
    let (_, removed) = c.strip_audit_flags();
    for r in removed.iter().filter(|r| !is_known_audit_flag(&r.name)) {
        warnings.push(format!(
            "{loc}: {} is not an audit flag kaudit-node knows; it is removed with the others",
            r.name
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names() {
        for ok in [
            "kube-apiserver.service",
            "a.service",
            "x:y_z.v\\x2d1.service",
        ] {
            validate_unit_name(ok).unwrap();
        }
        for (bad, why) in [
            ("", "empty"),
            ("kube-apiserver", ".service"),
            ("kube-apiserver.socket", ".service"),
            (".service", "nothing before"),
            ("/etc/systemd/system/a.service", "not a path"),
            ("a b.service", "whitespace"),
            ("a\n.service", "control"),
            ("kube-apiserver@.service", "template"),
            ("kube-apiserver@1.service", "template"),
            ("a+b.service", "'+'"),
            ("é.service", "'é'"),
        ] {
            let e = validate_unit_name(bad).unwrap_err();
            assert_eq!(e.code, crate::error::ExitCode::Config);
            assert!(e.message.contains(why), "{bad:?}: {}", e.message);
        }
        let long = format!("{}.service", "a".repeat(247));
        assert_eq!(long.len(), 255);
        validate_unit_name(&long).unwrap();
        assert!(validate_unit_name(&format!("a{long}")).is_err());
    }

    #[test]
    fn booleans() {
        for t in ["1", "yes", "Y", "true", "T", "on", "ON"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "no", "n", "false", "f", "off"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool(""), None);
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn path_helpers() {
        assert_eq!(simplify_path("//var/./log//k/"), Some("/var/log/k".into()));
        assert_eq!(simplify_path("/"), Some("/".into()));
        assert_eq!(simplify_path("/a/../b"), None);
        assert_eq!(
            expand_path_specifiers("%L/%N/x%%", "kube-apiserver.service"),
            Some("/var/log/kube-apiserver/x%".into())
        );
        assert_eq!(expand_path_specifiers("%H/x", "a.service"), None);
    }

    #[test]
    fn env_audit_flag_display() {
        let f = EnvAuditFlag {
            variable: "KUBE_API_ARGS".into(),
            whole_word: true,
            source: PathBuf::from("/etc/kubernetes/apiserver"),
            line: 24,
            flag: "--audit-log-path=/x".into(),
        };
        assert_eq!(
            f.to_string(),
            "/etc/kubernetes/apiserver:24: $KUBE_API_ARGS passes --audit-log-path=/x"
        );
        let g = EnvAuditFlag {
            whole_word: false,
            ..f
        };
        assert_eq!(
            g.to_string(),
            "/etc/kubernetes/apiserver:24: ${KUBE_API_ARGS} passes --audit-log-path=/x"
        );
    }
}
