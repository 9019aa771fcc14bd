//! The unit reader on a node: `unit::load` under a `Root`, which applies
//! the fragment, a drop-in and the `EnvironmentFile=` files as systemd does
//! (`Environment=`, `$VAR` and `${VAR}` references, `--audit-*` flags hidden
//! in variables, `ReadWritePaths=` and the other sandbox settings).
//!
//! The input is up to four files separated by NUL bytes: the fragment
//! `/etc/systemd/system/kube-apiserver.service`, the drop-in
//! `/etc/systemd/system/kube-apiserver.service.d/10-site.conf`, and the
//! environment files `/etc/kubernetes/apiserver` and `/etc/kubernetes/config`
//! (the Fedora/contrib unit's). They are written under a temporary root.

#![no_main]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kaudit_node::error::ExitCode;
use kaudit_node::root::Root;
use kaudit_node::unit::{self, Command, ProtectSystem};
use libfuzzer_sys::fuzz_target;

use common::check_command;

const FILES: [&str; 4] = [
    "etc/systemd/system/kube-apiserver.service",
    "etc/systemd/system/kube-apiserver.service.d/10-site.conf",
    "etc/kubernetes/apiserver",
    "etc/kubernetes/config",
];

fn root_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("kaudit-node-fuzz-{}", std::process::id()));
        for f in FILES {
            fs::create_dir_all(d.join(f).parent().expect("a parent")).expect("mkdir");
        }
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = root_dir();
    let mut parts = data.splitn(FILES.len(), |b| *b == 0);
    for f in FILES {
        let path = dir.join(f);
        match parts.next() {
            Some(bytes) => fs::write(&path, bytes).expect("write"),
            None => match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("{}: {e}", path.display()),
            },
        }
    }
    let root = Root::new(dir);
    let v = match unit::load(&root, "kube-apiserver.service", "50-kaudit-node.conf") {
        Err(e) => {
            assert!(
                matches!(e.code, ExitCode::DataErr | ExitCode::NoInput),
                "{:?}: {}",
                e.code,
                e.message
            );
            assert!(!e.message.is_empty());
            return;
        }
        Ok(v) => v,
    };
    assert_eq!(v.name, "kube-apiserver.service");
    assert_eq!(
        v.fragment,
        Path::new("/etc/systemd/system/kube-apiserver.service")
    );
    assert!(!v.ours_present);
    assert!(v.exec_start_source.1 >= 1);
    // The effective command is the parse of its raw value.
    let again = Command::parse(&v.exec_start_raw).expect("the effective ExecStart= parses");
    assert_eq!(again, v.exec_start);
    check_command(&v.exec_start_raw, &["--audit-log-path=/var/log/a b%$.log"]);
    for f in &v.env_audit_flags {
        assert!(f.flag.starts_with("--audit-"), "{f:?}");
        assert!(v.exec_start_vars.contains(&f.variable), "{f:?}");
        assert!(f.line >= 1);
    }
    for r in v.exec_start.env_references() {
        assert!(v.exec_start_vars.contains(&r.name));
    }
    for list in [
        &v.read_only_paths,
        &v.read_write_paths,
        &v.inaccessible_paths,
    ] {
        for p in list {
            let bare = p.trim_start_matches('-').trim_start_matches('+');
            // Absolute and normalised, or kept as written with a specifier
            // kaudit-node does not resolve.
            assert!(
                p.contains('%')
                    || (bare.starts_with('/')
                        && !bare.contains("//")
                        && (bare == "/" || !bare.ends_with('/'))
                        && !bare.split('/').any(|c| c == "." || c == "..")),
                "{p:?}"
            );
        }
    }
    assert!(matches!(
        v.protect_home.as_deref(),
        None | Some("no" | "yes" | "read-only" | "tmpfs")
    ));
    if v.dynamic_user {
        assert_eq!(v.protect_system, ProtectSystem::Strict);
        assert!(v.private_tmp);
        assert_ne!(v.protect_home.as_deref(), Some("no"));
    }
    for w in &v.warnings {
        assert!(!w.is_empty());
    }
});
