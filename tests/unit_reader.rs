//! The unit reader (`kaudit_node::unit`) on trees built in a temporary
//! root, and against the real systemd 252 of this machine:
//! `SYSTEMD_LOG_LEVEL=debug systemd-analyze verify --root=DIR UNIT` loads
//! the unit in a test manager and dumps it, including each command's argv
//! ("Command Line:", after unquoting and specifier expansion, before
//! environment expansion) and the drop-ins applied ("DropIn Path:"). The
//! tests compare kaudit-node's parse with that argv, and the argv of the
//! vendor command re-emitted in a drop-in with the original's. They are
//! fail where `systemd-analyze` is missing, unless KAUDIT_TEST_SKIP=systemd-analyze.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as Proc;

use kaudit_node::error::ExitCode;
use kaudit_node::root::Root;
use kaudit_node::unit::{self, ProtectSystem, UnitView};

const NAME: &str = "kube-apiserver.service";
const OURS: &str = "50-kaudit-node.conf";
const OURS_PATH: &str = "/etc/systemd/system/kube-apiserver.service.d/50-kaudit-node.conf";

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/units")
        .join(name);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A node's file system in a temporary directory.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Self {
        Tree {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> Root {
        Root::new(self.dir.path())
    }

    fn host(&self, node: &str) -> PathBuf {
        self.dir.path().join(node.trim_start_matches('/'))
    }

    fn write(&self, node: &str, text: &str) -> &Self {
        let h = self.host(node);
        fs::create_dir_all(h.parent().unwrap()).unwrap();
        fs::write(h, text).unwrap();
        self
    }

    fn symlink(&self, node: &str, target: &str) -> &Self {
        let h = self.host(node);
        fs::create_dir_all(h.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, h).unwrap();
        self
    }

    /// An executable at `node` (a copy of /bin/true), for systemd-analyze.
    fn exe(&self, node: &str) -> &Self {
        let h = self.host(node);
        fs::create_dir_all(h.parent().unwrap()).unwrap();
        fs::copy("/bin/true", &h).unwrap();
        self
    }

    fn unit(&self, text: &str) -> &Self {
        self.write(&format!("/etc/systemd/system/{NAME}"), text)
    }

    fn load(&self) -> UnitView {
        unit::load(&self.root(), NAME, OURS).unwrap_or_else(|e| panic!("load: {}", e.message))
    }

    fn load_err(&self) -> kaudit_node::error::Error {
        unit::load(&self.root(), NAME, OURS).expect_err("load should fail")
    }
}

fn paths(v: &[&str]) -> Vec<PathBuf> {
    v.iter().map(PathBuf::from).collect()
}

const SIMPLE: &str = "[Service]\nExecStart=/usr/bin/kube-apiserver --v=2\n";

// ---------------------------------------------------------------------------
// Fixtures

#[test]
fn kthw_unit() {
    let t = Tree::new();
    t.unit(&fixture("kthw.service"));
    let v = t.load();
    assert_eq!(
        v.fragment,
        PathBuf::from("/etc/systemd/system/kube-apiserver.service")
    );
    assert_eq!(v.exec_start_source, (v.fragment.clone(), 6));
    assert_eq!(v.exec_start.executable(), "/usr/local/bin/kube-apiserver");
    assert_eq!(v.exec_start.words.len(), 26);
    assert_eq!(
        v.exec_start.words[17].raw,
        "--runtime-config='api/all=true'"
    );
    assert_eq!(
        v.exec_start.words[17].value,
        "--runtime-config=api/all=true"
    );
    assert!(
        v.exec_start_raw
            .starts_with("/usr/local/bin/kube-apiserver    --allow-privileged=true  ")
    );
    assert_eq!(
        (
            v.user.as_deref(),
            v.group.as_deref(),
            v.service_type.as_deref()
        ),
        (None, None, None)
    );
    assert_eq!(v.protect_system, ProtectSystem::No);
    assert!(!v.private_tmp && !v.dynamic_user && !v.ours_present);
    assert!(v.dropins.is_empty() && v.overriding_dropins.is_empty());
    assert_eq!(v.ours, PathBuf::from(OURS_PATH));
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);

    let (stripped, removed) = v.exec_start.strip_audit_flags();
    let names: Vec<&str> = removed.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "--audit-log-maxage",
            "--audit-log-maxbackup",
            "--audit-log-maxsize",
            "--audit-log-path"
        ]
    );
    assert_eq!(removed[3].value.as_deref(), Some("/var/log/audit.log"));
    assert_eq!(stripped.words.len(), 22);
    assert!(!stripped.raw_text().contains("--audit"));
}

#[test]
fn contrib_unit_with_environment_files() {
    let t = Tree::new();
    t.unit(&fixture("contrib.service"))
        .write("/etc/kubernetes/config", &fixture("contrib-config.env"))
        .write(
            "/etc/kubernetes/apiserver",
            &fixture("contrib-apiserver.env"),
        );
    let v = t.load();
    assert_eq!(v.user.as_deref(), Some("kube"));
    assert_eq!(v.service_type.as_deref(), Some("notify"));
    assert_eq!(
        v.environment_files,
        [
            ("/etc/kubernetes/config".to_string(), true),
            ("/etc/kubernetes/apiserver".to_string(), true)
        ]
    );
    assert_eq!(v.exec_start.executable(), "/usr/bin/kube-apiserver");
    assert_eq!(
        v.exec_start_vars,
        [
            "KUBE_LOGTOSTDERR",
            "KUBE_LOG_LEVEL",
            "KUBE_ETCD_SERVERS",
            "KUBE_API_ADDRESS",
            "KUBE_API_PORT",
            "KUBELET_PORT",
            "KUBE_ALLOW_PRIV",
            "KUBE_SERVICE_ADDRESSES",
            "KUBE_ADMISSION_CONTROL",
            "KUBE_API_ARGS"
        ]
    );
    let flags: Vec<String> = v.env_audit_flags.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        flags,
        [
            "/etc/kubernetes/apiserver:26: $KUBE_API_ARGS passes --audit-log-path=/var/log/kubernetes/audit.log",
            "/etc/kubernetes/apiserver:26: $KUBE_API_ARGS passes --audit-log-maxage 7",
            "/etc/kubernetes/apiserver:26: $KUBE_API_ARGS passes --audit-log-compress",
        ]
    );
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
    // Nothing to strip in the command line itself: the flags are in the file.
    assert!(v.exec_start.strip_audit_flags().1.is_empty());
    // What the vendor's command line gives a flag, through a variable,
    // in either form.
    assert_eq!(
        v.vendor_audit_flag_values("audit-log-path"),
        ["/var/log/kubernetes/audit.log"]
    );
    assert_eq!(v.vendor_audit_flag_values("audit-log-maxage"), ["7"]);
    assert!(v.vendor_audit_flag_values("audit-policy-file").is_empty());
}

#[test]
fn vendor_audit_flag_values_in_exec_start() {
    let t = Tree::new();
    t.unit(
        "[Service]\nExecStart=/usr/local/bin/kube-apiserver --audit-policy-file=/a.yaml \\\n  --audit-policy-file /b.yaml --audit-log-path=/x.log --v=2\n",
    );
    let v = t.load();
    assert_eq!(
        v.vendor_audit_flag_values("audit-policy-file"),
        ["/a.yaml", "/b.yaml"]
    );
    assert_eq!(v.vendor_audit_flag_values("audit-log-path"), ["/x.log"]);
    assert!(v.vendor_audit_flag_values("audit-log").is_empty());
}

#[test]
fn contrib_unit_without_its_optional_files() {
    let t = Tree::new();
    t.unit(&fixture("contrib.service"));
    let v = t.load();
    assert!(v.env_audit_flags.is_empty());
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
}

#[test]
fn hardened_unit() {
    let t = Tree::new();
    t.unit(&fixture("hardened.service"));
    let v = t.load();
    assert_eq!(v.protect_system, ProtectSystem::Strict);
    assert_eq!(v.protect_home.as_deref(), Some("yes"));
    assert!(v.private_tmp);
    assert_eq!(
        (v.user.as_deref(), v.group.as_deref()),
        (Some("kube"), Some("kube"))
    );
    assert_eq!(v.read_only_paths, ["/etc/kubernetes"]);
    assert_eq!(
        v.read_write_paths,
        [
            "-/var/lib/kubernetes",
            "/run/kubernetes",
            "/var/log/kube apiserver"
        ]
    );
    assert_eq!(v.inaccessible_paths, ["-/root", "+/srv/secrets"]);
    assert_eq!(v.logs_directory, ["kubernetes"]);
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
}

#[test]
fn quoting_unit() {
    let t = Tree::new();
    t.unit(&fixture("quoting.service"));
    let v = t.load();
    let c = &v.exec_start;
    assert_eq!(c.prefixes, "-@");
    assert_eq!(c.executable(), "/usr/local/bin/kube-apiserver");
    let raw: Vec<&str> = c.words.iter().map(|w| w.raw.as_str()).collect();
    assert_eq!(
        raw,
        [
            "-@/usr/local/bin/kube-apiserver",
            "kube-apiserver",
            "--advertise-address=10.0.0.1",
            "\"--service-node-port-range=30000-32767\"",
            "'--runtime-config=api/all=true'",
            "\"--etcd-prefix=/registry %%\"",
            "--cluster-name=%N",
            "--unit=%n",
            "--prefix=%p",
            "--instance=%i",
            "--percent=50%%",
            "--dollar=$$HOME",
            "$$literal",
            "--braced=${QUOTED}",
            "$KUBE_EXTRA",
            "--hex=\\x41\\x42",
            "'--single=\\x43'",
            "--space=a\\sb",
            "--mixed=a\"b c\"d",
            "#hash-word",
            ";semicolon-word",
            "\\;",
            "\"\"",
            "--last=1",
        ]
    );
    let values: Vec<&str> = c.words.iter().map(|w| w.value.as_str()).collect();
    assert_eq!(
        &values[3..],
        [
            "--service-node-port-range=30000-32767",
            "--runtime-config=api/all=true",
            "--etcd-prefix=/registry %%",
            "--cluster-name=%N",
            "--unit=%n",
            "--prefix=%p",
            "--instance=%i",
            "--percent=50%%",
            "--dollar=$$HOME",
            "$$literal",
            "--braced=${QUOTED}",
            "$KUBE_EXTRA",
            "--hex=AB",
            "--single=C",
            "--space=a b",
            "--mixed=ab cd",
            "#hash-word",
            ";semicolon-word",
            ";",
            "",
            "--last=1",
        ]
    );
    assert_eq!(c.argv_values()[0], "kube-apiserver");
    assert_eq!(v.exec_start_vars, ["QUOTED", "KUBE_EXTRA"]);
    assert!(v.env_audit_flags.is_empty());
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
}

#[test]
fn audit_flags_unit() {
    let t = Tree::new();
    t.unit(&fixture("audit-flags.service"));
    let v = t.load();
    let (stripped, removed) = v.exec_start.strip_audit_flags();
    let got: Vec<(&str, Option<&str>, &str)> = removed
        .iter()
        .map(|r| (r.name.as_str(), r.value.as_deref(), r.raw.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "--audit-log-path",
                Some("/var/log/kubernetes/audit.log"),
                "--audit-log-path /var/log/kubernetes/audit.log"
            ),
            ("--audit-log-maxage", Some("30"), "--audit-log-maxage=30"),
            (
                "--audit-policy-file",
                Some("/etc/kubernetes/audit policy.yaml"),
                "\"--audit-policy-file=/etc/kubernetes/audit policy.yaml\""
            ),
            ("--audit-log-compress", None, "--audit-log-compress"),
            (
                "--audit-log-truncate-enabled",
                Some("true"),
                "--audit-log-truncate-enabled=true"
            ),
            (
                "--audit-log-format",
                Some("json"),
                "--audit-log-format json"
            ),
            (
                "--audit-webhook-batch-throttle-enable",
                None,
                "--audit-webhook-batch-throttle-enable"
            ),
        ]
    );
    assert_eq!(
        stripped.raw_text(),
        "/usr/bin/kube-apiserver --etcd-servers=https://127.0.0.1:2379 --v=2"
    );
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
}

#[test]
fn wrapper_unit_is_a_warning() {
    let t = Tree::new();
    t.unit(&fixture("wrapper.service"));
    let v = t.load();
    assert_eq!(v.exec_start.executable_name(), "start-kube-apiserver.sh");
    assert_eq!(v.warnings.len(), 1, "{:?}", v.warnings);
    assert!(
        v.warnings[0].contains("runs /usr/local/bin/start-kube-apiserver.sh, not kube-apiserver"),
        "{}",
        v.warnings[0]
    );
}

#[test]
fn shell_wrapper_is_a_warning() {
    let t = Tree::new();
    t.unit("[Service]\nExecStart=/bin/sh -c 'exec /usr/bin/kube-apiserver \"$@\"' kube-apiserver --v=2\n");
    let v = t.load();
    assert!(
        v.warnings
            .iter()
            .any(|w| w.contains("runs a shell (/bin/sh)")),
        "{:?}",
        v.warnings
    );
    // hyperkube with the apiserver subcommand is the apiserver.
    let t = Tree::new();
    t.unit("[Service]\nExecStart=/usr/bin/hyperkube kube-apiserver --v=2\n");
    assert!(t.load().warnings.is_empty());
}

// ---------------------------------------------------------------------------
// Locating the fragment and the drop-ins

#[test]
fn fragment_search_order() {
    let t = Tree::new();
    t.write(
        "/lib/systemd/system/kube-apiserver.service",
        "[Service]\nExecStart=/lib/x\n",
    )
    .write(
        "/usr/lib/systemd/system/kube-apiserver.service",
        "[Service]\nExecStart=/usr/lib/x\n",
    );
    assert_eq!(
        t.load().fragment,
        PathBuf::from("/lib/systemd/system/kube-apiserver.service")
    );
    t.write(
        "/usr/local/lib/systemd/system/kube-apiserver.service",
        "[Service]\nExecStart=/usr/local/x\n",
    );
    assert_eq!(t.load().exec_start.executable(), "/usr/local/x");
    t.write(
        "/run/systemd/system/kube-apiserver.service",
        "[Service]\nExecStart=/run/x\n",
    );
    assert_eq!(t.load().exec_start.executable(), "/run/x");
    t.unit("[Service]\nExecStart=/etc/x\n");
    let v = t.load();
    assert_eq!(
        v.fragment,
        PathBuf::from("/etc/systemd/system/kube-apiserver.service")
    );
    assert_eq!(v.exec_start.executable(), "/etc/x");
}

#[test]
fn merged_usr_with_an_absolute_lib_symlink() {
    let t = Tree::new();
    t.write("/usr/lib/systemd/system/kube-apiserver.service", SIMPLE)
        .write(
            "/usr/lib/systemd/system/kube-apiserver.service.d/10-a.conf",
            "[Service]\nUser=a\n",
        )
        .symlink("/lib", "/usr/lib");
    let v = t.load();
    // /lib comes first in systemd 252's (Debian) search path; /usr/lib is the
    // same directory and is not searched twice.
    assert_eq!(
        v.fragment,
        PathBuf::from("/lib/systemd/system/kube-apiserver.service")
    );
    assert_eq!(
        v.dropins,
        paths(&["/lib/systemd/system/kube-apiserver.service.d/10-a.conf"])
    );
    assert_eq!(v.user.as_deref(), Some("a"));
}

#[test]
fn missing_unit_names_the_search_path() {
    let t = Tree::new();
    t.write("/etc/systemd/system/other.service", SIMPLE);
    let e = t.load_err();
    assert_eq!(e.code, ExitCode::NoInput);
    // Under a root, the message says so.
    assert_eq!(
        e.message,
        format!(
            "kube-apiserver.service: no such unit file (looked in the 13 directories of systemd's \
             unit search path under the root {}, /etc/systemd/system.control to \
             /run/systemd/generator.late); is `unit` in the configuration right? (`systemctl cat \
             kube-apiserver.service` shows where systemd finds a unit)",
            t.dir.path().display()
        )
    );
}

#[test]
fn static_pod_node_is_named_as_such() {
    for manifest in kaudit_node::unit::STATIC_POD_MANIFESTS {
        let t = Tree::new();
        t.write(manifest, "apiVersion: v1\nkind: Pod\n");
        let e = t.load_err();
        assert_eq!(e.code, ExitCode::NoInput);
        assert!(
            e.message.contains(&format!(
                "and {manifest} exists: this node runs kube-apiserver as a static pod"
            )),
            "{}",
            e.message
        );
        assert!(e.message.contains("apiServer.extraArgs"), "{}", e.message);
    }
}

#[test]
fn masked_unit() {
    let t = Tree::new();
    t.write("/lib/systemd/system/kube-apiserver.service", SIMPLE)
        .symlink("/etc/systemd/system/kube-apiserver.service", "/dev/null");
    let e = t.load_err();
    assert!(e.message.contains("is masked"), "{}", e.message);
    assert!(
        e.message
            .contains("/etc/systemd/system/kube-apiserver.service"),
        "{}",
        e.message
    );
    assert!(e.message.contains("systemctl unmask"), "{}", e.message);

    let t = Tree::new();
    t.write("/lib/systemd/system/kube-apiserver.service", SIMPLE)
        .write("/etc/systemd/system/kube-apiserver.service", "");
    let e = t.load_err();
    assert!(
        e.message.contains("is masked (an empty file)"),
        "{}",
        e.message
    );
}

#[test]
fn template_units_are_refused() {
    let t = Tree::new();
    t.write("/etc/systemd/system/kube-apiserver@.service", SIMPLE);
    for name in ["kube-apiserver@a.service", "kube-apiserver@.service"] {
        let e = unit::load(&t.root(), name, OURS).unwrap_err();
        assert_eq!(e.code, ExitCode::Config);
        assert!(
            e.message.contains("template units and their instances"),
            "{}",
            e.message
        );
    }
}

#[test]
fn linked_unit_and_alias() {
    let t = Tree::new();
    t.write("/opt/k8s/kube-apiserver.service", SIMPLE).symlink(
        "/etc/systemd/system/kube-apiserver.service",
        "/opt/k8s/kube-apiserver.service",
    );
    let v = t.load();
    assert_eq!(v.fragment, PathBuf::from("/opt/k8s/kube-apiserver.service"));
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);

    let t = Tree::new();
    t.write("/lib/systemd/system/apiserver.service", SIMPLE)
        .symlink(
            "/etc/systemd/system/kube-apiserver.service",
            "/lib/systemd/system/apiserver.service",
        )
        .write(
            "/etc/systemd/system/apiserver.service.d/10-a.conf",
            "[Service]\nUser=a\n",
        )
        .write(
            "/etc/systemd/system/kube-apiserver.service.d/20-b.conf",
            "[Service]\nGroup=b\n",
        );
    let v = t.load();
    assert_eq!(
        v.fragment,
        PathBuf::from("/lib/systemd/system/apiserver.service")
    );
    assert!(
        v.warnings
            .iter()
            .any(|w| w.contains("is an alias of apiserver.service")),
        "{:?}",
        v.warnings
    );
    assert_eq!(
        (v.user.as_deref(), v.group.as_deref()),
        (Some("a"), Some("b"))
    );
}

#[test]
fn dangling_fragment() {
    let t = Tree::new();
    t.symlink(
        "/etc/systemd/system/kube-apiserver.service",
        "/opt/gone.service",
    );
    let e = t.load_err();
    assert!(e.message.contains("dangling"), "{}", e.message);
}

/// The drop-in tree also used against systemd below.
fn dropin_tree() -> Tree {
    let t = Tree::new();
    t.write(
        "/lib/systemd/system/kube-apiserver.service",
        "[Service]\nExecStart=/usr/bin/kube-apiserver --from=fragment\n",
    )
    .exe("/usr/bin/kube-apiserver")
    .write(
        "/lib/systemd/system/kube-apiserver.service.d/10-a.conf",
        "[Service]\nEnvironment=A=lib\n",
    )
    .write(
        "/etc/systemd/system/kube-.service.d/10-a.conf",
        "[Service]\nEnvironment=A=etc-prefix\n",
    )
    .write(
        "/etc/systemd/system/kube-.service.d/20-b.conf",
        "[Service]\nUser=never\n",
    )
    .symlink(
        "/etc/systemd/system/kube-apiserver.service.d/20-b.conf",
        "/dev/null",
    )
    .write(
        "/lib/systemd/system/kube-apiserver.service.d/30-empty.conf",
        "",
    )
    .write(
        "/usr/lib/systemd/system/service.d/05-c.conf",
        "[Service]\nEnvironment=C=type\nUser=typelevel\n",
    )
    .write(
        "/run/systemd/system/kube-apiserver.service.d/40-admin.conf",
        "[Service]\nExecStart=\nExecStart=/usr/bin/kube-apiserver --from=admin\n",
    )
    .write(
        "/usr/local/lib/systemd/system/kube-apiserver.service.d/40-admin.conf",
        "[Service]\nExecStart=/never\n",
    )
    .write(
        OURS_PATH,
        "[Service]\nExecStart=\nExecStart=/usr/bin/kube-apiserver --from=ours\n",
    )
    .write(
        "/lib/systemd/system/kube-apiserver.service.d/50-kaudit-node.conf",
        "[Service]\nUser=masked-by-ours\n",
    )
    .write(
        "/etc/systemd/system/kube-apiserver.service.d/70-after.conf",
        "[Service]\nGroup=after\n",
    )
    .write(
        "/etc/systemd/system/kube-apiserver.service.d/.hidden.conf",
        "[Service]\nUser=hidden\n",
    )
    .write(
        "/etc/systemd/system/kube-apiserver.service.d/README",
        "not a drop-in\n",
    );
    t
}

#[test]
fn dropin_order_and_masking_across_directories() {
    let t = dropin_tree();
    let v = t.load();
    assert_eq!(
        v.dropins,
        paths(&[
            "/usr/lib/systemd/system/service.d/05-c.conf",
            "/etc/systemd/system/kube-.service.d/10-a.conf",
            "/etc/systemd/system/kube-apiserver.service.d/20-b.conf",
            "/lib/systemd/system/kube-apiserver.service.d/30-empty.conf",
            "/run/systemd/system/kube-apiserver.service.d/40-admin.conf",
            "/etc/systemd/system/kube-apiserver.service.d/70-after.conf",
        ])
    );
    assert!(v.ours_present);
    // The admin's drop-in sorts before ours: its command is the vendor's.
    assert_eq!(
        v.exec_start.argv_values(),
        ["/usr/bin/kube-apiserver", "--from=admin"]
    );
    assert_eq!(
        v.exec_start_source,
        (
            PathBuf::from("/run/systemd/system/kube-apiserver.service.d/40-admin.conf"),
            3
        )
    );
    assert_eq!(v.exec_start_raw, "/usr/bin/kube-apiserver --from=admin");
    // 20-b.conf is masked; the type-level User= applies.
    assert_eq!(v.user.as_deref(), Some("typelevel"));
    assert_eq!(v.group.as_deref(), Some("after"));
    assert!(
        v.overriding_dropins.is_empty(),
        "{:?}",
        v.overriding_dropins
    );
    assert_eq!(v.warnings.len(), 1, "{:?}", v.warnings);
    assert!(v.warnings[0].starts_with(
        "/lib/systemd/system/kube-apiserver.service.d/50-kaudit-node.conf: has the same name"
    ));
}

#[test]
fn ours_is_excluded_from_the_vendor_view() {
    let t = Tree::new();
    t.unit(SIMPLE).write(OURS_PATH, "[Service]\nExecStart=\nExecStart=/usr/bin/kube-apiserver --v=2 --audit-log-path=/x\nUser=ours\n");
    let v = t.load();
    assert!(v.ours_present);
    assert_eq!(v.ours, PathBuf::from(OURS_PATH));
    assert!(v.dropins.is_empty());
    assert_eq!(v.exec_start.raw_text(), "/usr/bin/kube-apiserver --v=2");
    assert_eq!(v.user, None);
}

#[test]
fn override_after_ours_is_reported() {
    let t = Tree::new();
    let over = "/etc/systemd/system/kube-apiserver.service.d/override.conf";
    t.unit(SIMPLE).write(
        over,
        "[Service]\nExecStart=\nExecStart=/usr/bin/kube-apiserver --v=4\n",
    );
    let v = t.load();
    assert_eq!(v.overriding_dropins, paths(&[over]));
    assert_eq!(v.exec_start.raw_text(), "/usr/bin/kube-apiserver --v=4");

    // A later reset alone leaves no command at all.
    let t = Tree::new();
    t.unit(SIMPLE)
        .write(
            over,
            "[Service]\nExecStart=\nExecStart=/usr/bin/kube-apiserver\n",
        )
        .write(
            "/run/systemd/system/kube-apiserver.service.d/zz-reset.conf",
            "[Service]\nExecStart=\n",
        );
    let e = t.load_err();
    assert!(e.message.contains("has no ExecStart="), "{}", e.message);

    // A later drop-in without ExecStart= does not matter.
    let t = Tree::new();
    t.unit(SIMPLE).write(over, "[Service]\nEnvironment=A=1\n");
    assert!(t.load().overriding_dropins.is_empty());
}

#[test]
fn our_name_in_a_higher_priority_directory_masks_ours() {
    let t = Tree::new();
    let control = "/etc/systemd/system.control/kube-apiserver.service.d/50-kaudit-node.conf";
    t.unit(SIMPLE).write(control, "[Service]\nCPUWeight=50\n");
    let v = t.load();
    assert_eq!(v.overriding_dropins, paths(&[control]));
    assert_eq!(v.dropins, paths(&[control]));
    assert!(v.warnings.iter().any(|w| {
        w.contains("masks /etc/systemd/system/kube-apiserver.service.d/50-kaudit-node.conf")
    }));
}

#[test]
fn dropin_without_reset_gives_two_commands() {
    let t = Tree::new();
    t.unit(SIMPLE).write(
        "/etc/systemd/system/kube-apiserver.service.d/10-x.conf",
        "[Service]\nExecStart=/usr/bin/kube-apiserver --v=4\n",
    );
    let e = t.load_err();
    assert_eq!(e.code, ExitCode::DataErr);
    assert!(e.message.contains("2 ExecStart= commands"), "{}", e.message);
    assert!(
        e.message
            .contains("/etc/systemd/system/kube-apiserver.service:2"),
        "{}",
        e.message
    );
    assert!(e.message.contains("10-x.conf:2"), "{}", e.message);
}

#[test]
fn syntax_errors_name_file_and_line() {
    let t = Tree::new();
    t.unit("[Service]\nUser=a\nExecStart=/usr/bin/kube-apiserver \\\n  \"--unbalanced\n");
    let e = t.load_err();
    assert_eq!(e.code, ExitCode::DataErr);
    assert!(
        e.message.starts_with(
            "/etc/systemd/system/kube-apiserver.service:3: ExecStart=: unbalanced quoting"
        ),
        "{}",
        e.message
    );

    let t = Tree::new();
    t.unit(SIMPLE).write(
        "/etc/systemd/system/kube-apiserver.service.d/10-x.conf",
        "[Service\n",
    );
    let e = t.load_err();
    assert!(
        e.message.starts_with(
            "/etc/systemd/system/kube-apiserver.service.d/10-x.conf:1: invalid section header"
        ),
        "{}",
        e.message
    );
}

#[test]
fn environment_precedence_and_missing_files() {
    let t = Tree::new();
    t.unit(
        "[Service]\n\
         Environment=ARGS=--audit-log-path=/from-environment EXTRA=--audit-log-maxage=1\n\
         EnvironmentFile=/etc/kubernetes/required\n\
         EnvironmentFile=-/etc/kubernetes/optional\n\
         EnvironmentFile=/etc/kubernetes/*.env\n\
         ExecStart=/usr/bin/kube-apiserver $ARGS --x=${EXTRA} ${BRACED} $GLOBBED\n",
    )
    .write(
        "/etc/kubernetes/a.env",
        "ARGS='--audit-log-path=/from-file --v=2'\n",
    )
    .write(
        "/etc/kubernetes/b.env",
        "# c\nBRACED=--audit-policy-file=/p.yaml\nGLOBBED=--audit-log-mode batch\n",
    );
    let v = t.load();
    let flags: Vec<String> = v.env_audit_flags.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        flags,
        [
            "/etc/kubernetes/a.env:1: $ARGS passes --audit-log-path=/from-file",
            "/etc/kubernetes/b.env:2: ${BRACED} passes --audit-policy-file=/p.yaml",
            "/etc/kubernetes/b.env:3: $GLOBBED passes --audit-log-mode batch",
        ]
    );
    assert_eq!(v.warnings.len(), 1, "{:?}", v.warnings);
    assert!(
        v.warnings[0].contains(
            "EnvironmentFile=/etc/kubernetes/required does not exist and is not optional"
        ),
        "{}",
        v.warnings[0]
    );

    // Environment= alone (and an empty assignment resetting it).
    let t = Tree::new();
    t.unit("[Service]\nEnvironment=A=--audit-log-path=/x\nExecStart=/usr/bin/kube-apiserver $A\n")
        .write(
            "/etc/systemd/system/kube-apiserver.service.d/10-e.conf",
            "[Service]\nEnvironment=\nEnvironment=\"A=--v=1 --audit-log-maxsize=5\"\n",
        );
    let v = t.load();
    let flags: Vec<String> = v.env_audit_flags.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        flags,
        [
            "/etc/systemd/system/kube-apiserver.service.d/10-e.conf:3: $A passes --audit-log-maxsize=5"
        ]
    );
}

#[test]
fn no_env_expansion_prefix() {
    let t = Tree::new();
    t.unit("[Service]\nEnvironment=A=--audit-log-path=/x\nExecStart=:/usr/bin/kube-apiserver $A\n");
    let v = t.load();
    assert!(v.exec_start_vars.is_empty());
    assert!(v.env_audit_flags.is_empty());
    let q = unit::quote_word("--a=$b").unwrap();
    assert_eq!(
        unit::render_exec_start(&v.exec_start, &[q]),
        ":/usr/bin/kube-apiserver \\\n    $A \\\n    --a=$b"
    );
}

#[test]
fn dynamic_user_implies_strict_sandboxing() {
    let t = Tree::new();
    t.unit("[Service]\nDynamicUser=yes\nProtectSystem=full\nExecStart=/usr/bin/kube-apiserver\n");
    let v = t.load();
    assert!(v.dynamic_user && v.private_tmp);
    assert_eq!(v.protect_system, ProtectSystem::Strict);
    assert_eq!(v.protect_home.as_deref(), Some("read-only"));
    assert!(
        v.warnings
            .iter()
            .any(|w| w.contains("DynamicUser=yes implies"))
    );
}

#[test]
fn list_settings_accumulate_and_reset() {
    let t = Tree::new();
    t.unit("[Service]\nExecStart=/usr/bin/kube-apiserver\nReadWritePaths=/a\nReadWritePaths=/b\nProtectSystem=true\nPrivateTmp=on\n")
        .write(
            "/etc/systemd/system/kube-apiserver.service.d/10-x.conf",
            "[Service]\nReadWritePaths=\nReadWritePaths=%L/kubernetes -+/c//d/\nProtectSystem=\nPrivateTmp=maybe\nUser=\n",
        );
    let v = t.load();
    assert_eq!(v.read_write_paths, ["/var/log/kubernetes", "-+/c/d"]);
    assert_eq!(v.protect_system, ProtectSystem::No);
    assert!(v.private_tmp);
    assert_eq!(v.user, None);
    assert_eq!(v.warnings.len(), 1, "{:?}", v.warnings);
    assert!(v.warnings[0].contains("PrivateTmp=maybe is not a boolean"));
}

// ---------------------------------------------------------------------------
// Against the real systemd (systemd-analyze verify, offline)

fn have_systemd_analyze() -> bool {
    let ok = Proc::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    common::require(
        ok,
        "systemd-analyze",
        "the real-systemd checks run it (apt-get install systemd)",
    )
}

/// Minimal targets so that `verify` does not fail on default dependencies.
fn add_targets(t: &Tree) {
    for n in ["sysinit", "basic", "shutdown", "multi-user", "network"] {
        t.write(
            &format!("/lib/systemd/system/{n}.target"),
            &format!("[Unit]\nDescription={n}\n"),
        );
    }
}

fn analyze(t: &Tree, debug: bool) -> std::process::Output {
    let mut cmd = Proc::new("systemd-analyze");
    cmd.args(["verify", "--man=no"])
        .arg(format!("--root={}", t.dir.path().display()))
        .arg(NAME);
    cmd.env_remove("SYSTEMD_UNIT_PATH");
    if debug {
        cmd.env("SYSTEMD_LOG_LEVEL", "debug");
    } else {
        cmd.env_remove("SYSTEMD_LOG_LEVEL");
    }
    cmd.output().expect("run systemd-analyze")
}

/// Runs `systemd-analyze verify` and insists it is content.
fn verify_ok(t: &Tree, what: &str) {
    let out = analyze(t, false);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{what}: systemd-analyze verify failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Parses one argument list printed by systemd's `quote_command_line`:
/// words separated by spaces; `"…"` words with `\"`, `\\`, `\$`, `` \` ``
/// and C escapes for control characters (`\a`, `\t`, `\n`, octal `\177`).
fn parse_dump_words(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' {
            i += 1;
            continue;
        }
        let mut w: Vec<u8> = Vec::new();
        if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] != b'\\' {
                    w.push(b[i]);
                    i += 1;
                    continue;
                }
                let e = b[i + 1];
                i += 2;
                match e {
                    b'a' => w.push(7),
                    b'b' => w.push(8),
                    b'f' => w.push(12),
                    b'n' => w.push(b'\n'),
                    b'r' => w.push(b'\r'),
                    b't' => w.push(b'\t'),
                    b'v' => w.push(11),
                    b'0'..=b'7' => {
                        let oct = std::str::from_utf8(&b[i - 1..i + 2]).unwrap();
                        w.push(u8::from_str_radix(oct, 8).expect("octal escape"));
                        i += 2;
                    }
                    _ => w.push(e),
                }
            }
            i += 1;
        } else {
            while i < b.len() && b[i] != b' ' {
                w.push(b[i]);
                i += 1;
            }
        }
        out.push(String::from_utf8(w).expect("UTF-8 argument"));
    }
    out
}

/// The unit as systemd loaded it: the argv of its `ExecStart=` and its
/// drop-in paths (as node paths).
struct Dumped {
    argv: Vec<String>,
    dropins: Vec<PathBuf>,
}

fn systemd_dump(t: &Tree) -> Dumped {
    let out = analyze(t, true);
    let text = String::from_utf8_lossy(&out.stdout);
    let prefix = t.dir.path().display().to_string();
    let mut lines = text.lines();
    let mut dropins = Vec::new();
    let mut argv = None;
    while let Some(l) = lines.next() {
        let l = l.trim_start();
        if let Some(p) = l.strip_prefix("DropIn Path: ") {
            dropins.push(PathBuf::from(p.strip_prefix(&prefix).unwrap_or(p)));
        }
        if l == "-> ExecStart:" {
            let cl = lines
                .next()
                .expect("a command line after ExecStart")
                .trim_start();
            let cl = cl.strip_prefix("Command Line: ").expect("Command Line:");
            argv = Some(parse_dump_words(cl));
        }
    }
    let argv = argv.unwrap_or_else(|| {
        panic!(
            "no ExecStart in the dump:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Dumped { argv, dropins }
}

/// What systemd does to a word value at load time: the specifiers used in
/// the fixtures (for a non-instance unit) expanded.
fn expand_specifiers(v: &str) -> String {
    let mut out = String::new();
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('%') | None => out.push('%'),
            Some('n') => out.push_str(NAME),
            Some('N') | Some('p') => out.push_str("kube-apiserver"),
            Some('i') => {}
            Some(s) => panic!("specifier %{s} not handled by the test"),
        }
    }
    out
}

fn drop_in(t: &Tree, exec_start: &str) {
    t.write(
        OURS_PATH,
        &format!("# test\n[Service]\nExecStart=\nExecStart={exec_start}\n"),
    );
}

/// Values kaudit-node could append, chosen to be hard to quote.
const APPENDED: [&str; 7] = [
    "--audit-policy-file=/etc/kubernetes/audit policy.yaml",
    "--audit-log-path=/var/log/kube audit/50%/$HOME/${X}/a\"b'c\\d.log",
    "#hash",
    ";",
    "",
    "--audit-log-maxage=30",
    "%i$$",
];

#[test]
fn systemd_reads_fixture_command_lines_as_kaudit_node_does() {
    if !have_systemd_analyze() {
        return;
    }
    for f in [
        "kthw.service",
        "contrib.service",
        "hardened.service",
        "quoting.service",
        "audit-flags.service",
        "wrapper.service",
    ] {
        let t = Tree::new();
        add_targets(&t);
        t.unit(&fixture(f));
        let v = t.load();
        t.exe(v.exec_start.executable());
        verify_ok(&t, f);
        let original = systemd_dump(&t).argv;

        // kaudit-node's parse, with the specifiers systemd expands at load time.
        let mine: Vec<String> = v
            .exec_start
            .argv_values()
            .iter()
            .map(|s| expand_specifiers(s))
            .collect();
        assert_eq!(
            mine, original,
            "{f}: kaudit-node's argv differs from systemd's"
        );

        // The vendor command re-emitted, one word per line, in a drop-in.
        let rendered = unit::render_exec_start(&v.exec_start, &[]);
        drop_in(&t, &rendered);
        verify_ok(&t, &format!("{f} re-emitted"));
        assert_eq!(
            systemd_dump(&t).argv,
            original,
            "{f}: re-emitted command differs:\n{rendered}"
        );
        // And on one line.
        drop_in(&t, &v.exec_start.raw_text());
        verify_ok(&t, &format!("{f} on one line"));
        assert_eq!(
            systemd_dump(&t).argv,
            original,
            "{f}: one-line command differs"
        );

        // Stripped of its audit flags, with kaudit-node's appended.
        let (stripped, removed) = v.exec_start.strip_audit_flags();
        let mut gone = BTreeSet::new();
        for r in &removed {
            gone.insert(r.word_index);
            if r.raw != v.exec_start.words[r.word_index].raw {
                gone.insert(r.word_index + 1);
            }
        }
        let skip = usize::from(v.exec_start.separate_argv0());
        let mut expected: Vec<String> = original
            .iter()
            .enumerate()
            .filter(|(i, _)| !gone.contains(&(i + skip)))
            .map(|(_, a)| a.clone())
            .collect();
        // The dump shows argv before variable expansion: `$$` stays doubled.
        expected.extend(APPENDED.iter().map(|a| {
            if v.exec_start.expands_env() {
                a.replace('$', "$$")
            } else {
                a.to_string()
            }
        }));
        let quoted: Vec<String> = APPENDED
            .iter()
            .map(|a| unit::quote_word(a).unwrap())
            .collect();
        let rendered = unit::render_exec_start(&stripped, &quoted);
        drop_in(&t, &rendered);
        verify_ok(&t, &format!("{f} with kaudit-node's flags"));
        assert_eq!(
            systemd_dump(&t).argv,
            expected,
            "{f}: stripped + appended differs:\n{rendered}"
        );
    }
}

#[test]
fn systemd_reads_tricky_command_lines_as_kaudit_node_does() {
    if !have_systemd_analyze() {
        return;
    }
    for cmdline in [
        ":/usr/bin/kube-apiserver $A $$B '${C}' --d=%%",
        "+/usr/bin/kube-apiserver a\\ b \\q c\\; \"\\;\" \\\\; ';'",
        "!!/usr/bin/kube-apiserver \"a\\\"b\" 'c\\'d' \\u00e9\\U0001F600 \\101\\x42 \"\\a\\t\\n\" x\\x7fy \\001 x \\ ",
        "/usr/bin/kube-apiserver --audit-log-path\t/x  --v=2 \"\" ''",
    ] {
        let t = Tree::new();
        add_targets(&t);
        t.exe("/usr/bin/kube-apiserver");
        t.unit(&format!("[Service]\nExecStart={cmdline}\n"));
        let v = t.load();
        let original = systemd_dump(&t).argv;
        let mine: Vec<String> = v
            .exec_start
            .argv_values()
            .iter()
            .map(|s| expand_specifiers(s))
            .collect();
        assert_eq!(mine, original, "{cmdline}");
        let rendered = unit::render_exec_start(&v.exec_start, &[]);
        drop_in(&t, &rendered);
        assert_eq!(
            systemd_dump(&t).argv,
            original,
            "{cmdline} re-emitted as\n{rendered}"
        );
        let quoted: Vec<String> = APPENDED
            .iter()
            .map(|a| unit::quote_word(a).unwrap())
            .collect();
        let (stripped, _) = v.exec_start.strip_audit_flags();
        drop_in(&t, &unit::render_exec_start(&stripped, &quoted));
        let got = systemd_dump(&t).argv;
        let tail: Vec<String> = got[got.len() - APPENDED.len()..].to_vec();
        let want: Vec<String> = APPENDED
            .iter()
            .map(|a| {
                if v.exec_start.expands_env() {
                    a.replace('$', "$$")
                } else {
                    a.to_string()
                }
            })
            .collect();
        assert_eq!(tail, want, "{cmdline}");
    }
}

/// Found by fuzzing: a word ending in a backslash and a blank (`b\ `,
/// which systemd keeps as both characters) that ends the command once the
/// audit flags after it are stripped. Re-emitted as is, the unit parser
/// would strip the blank at the end of the line.
#[test]
fn systemd_reads_a_last_word_ending_in_backslash_blank_as_kaudit_node_does() {
    if !have_systemd_analyze() {
        return;
    }
    let t = Tree::new();
    add_targets(&t);
    t.exe("/usr/bin/kube-apiserver");
    t.unit("[Service]\nExecStart=/usr/bin/kube-apiserver --v=2 b\\  --audit-log-path=/x\n");
    let v = t.load();
    let original = systemd_dump(&t).argv;
    assert_eq!(
        original,
        [
            "/usr/bin/kube-apiserver",
            "--v=2",
            "b\\ ",
            "--audit-log-path=/x"
        ]
    );
    assert_eq!(v.exec_start.argv_values(), original);
    let (stripped, _) = v.exec_start.strip_audit_flags();
    let rendered = unit::render_exec_start(&stripped, &[]);
    drop_in(&t, &rendered);
    assert_eq!(
        systemd_dump(&t).argv,
        original[..3],
        "re-emitted as\n{rendered}"
    );
}

#[test]
fn systemd_applies_the_same_dropins() {
    if !have_systemd_analyze() {
        return;
    }
    let t = dropin_tree();
    add_targets(&t);
    let v = t.load();
    verify_ok(&t, "drop-in tree");
    let d = systemd_dump(&t);
    // systemd also applies ours, which the vendor view leaves out.
    let mut expected = v.dropins.clone();
    expected.push(PathBuf::from(OURS_PATH));
    expected.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    assert_eq!(d.dropins, expected);
    assert_eq!(d.argv, ["/usr/bin/kube-apiserver", "--from=ours"]);
    // Without ours, systemd runs the command of the vendor view.
    fs::remove_file(t.host(OURS_PATH)).unwrap();
    let d = systemd_dump(&t);
    assert_eq!(d.dropins, {
        let mut p = v.dropins.clone();
        p.insert(
            5,
            PathBuf::from("/lib/systemd/system/kube-apiserver.service.d/50-kaudit-node.conf"),
        );
        p
    });
    assert_eq!(d.argv, v.exec_start.argv_values());
}
