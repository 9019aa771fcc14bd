//! Rendering for people and machines: the plan as text (unified diffs per
//! file, then the actions and warnings) or as one JSON object.

use std::fmt::Write as _;

use serde_json::json;

use crate::plan::{Change, Entry, Kind, Plan, Purpose};

fn diff(old: &[u8], new: &[u8], a: &str, b: &str) -> String {
    let old = String::from_utf8_lossy(old);
    let new = String::from_utf8_lossy(new);
    let d = similar::TextDiff::from_lines(old.as_ref(), new.as_ref());
    let mut out = d.unified_diff().context_radius(3).header(a, b).to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// The unified diff of an entry's content change ("" when none).
pub fn entry_diff(e: &Entry) -> String {
    if e.kind != Kind::File || !matches!(e.change, Change::Create | Change::Update) {
        return String::new();
    }
    let path = e.path.display().to_string();
    match &e.current {
        Some(cur) => diff(cur, &e.content, &path, &path),
        None => diff(b"", &e.content, "/dev/null", &path),
    }
}

fn verb(e: &Entry) -> &'static str {
    match (&e.change, &e.kind) {
        (Change::Create, Kind::Directory) => "create directory",
        (Change::Create, Kind::Log) => "create empty",
        (Change::Create, Kind::File) => "create",
        (Change::Update, _) => "update",
        (Change::Metadata, _) => "set mode and owner of",
        (Change::Unchanged, _) => "keep",
    }
}

pub fn plan_text(p: &Plan) -> String {
    let mut t = String::new();
    match p.purpose {
        Purpose::Apply => {
            let _ = writeln!(
                t,
                "Plan for {} (vendor command line from {})",
                p.unit, p.vendor_source
            );
            if p.is_converged() {
                let _ = writeln!(t, "\nConverged: nothing to write, no reload, no restart.");
            }
        }
        Purpose::Remove => {
            let _ = writeln!(t, "Removal plan for {}", p.unit);
            if p.is_converged() {
                let _ = writeln!(
                    t,
                    "\nNothing to remove: no file of kaudit-node's is there; no reload, no restart."
                );
            }
        }
    }
    for e in p.changes() {
        let was = e
            .was
            .as_ref()
            .map(|w| format!(", was {w}"))
            .unwrap_or_default();
        let _ = writeln!(
            t,
            "\n{} {} ({:04o} {}:{}{was}): {}",
            verb(e),
            e.path.display(),
            e.mode,
            e.owner.user,
            e.owner.group,
            e.purpose
        );
        t.push_str(&entry_diff(e));
    }
    for r in &p.removals {
        let path = r.path.display().to_string();
        let _ = writeln!(t, "\nremove {path}: {}", r.purpose);
        t.push_str(&diff(&r.current, b"", &path, "/dev/null"));
    }
    if !p.actions.is_empty() {
        t.push_str("\nActions:\n");
        for a in &p.actions {
            let _ = writeln!(t, "  {a}");
        }
    }
    if !p.notes.is_empty() && !p.is_converged() {
        t.push_str("\nNotes:\n");
        for n in &p.notes {
            let _ = writeln!(t, "  {n}");
        }
    }
    if !p.warnings.is_empty() {
        t.push_str("\nWarnings:\n");
        for w in &p.warnings {
            let _ = writeln!(t, "  {w}");
        }
    }
    t
}

pub fn plan_json(p: &Plan) -> serde_json::Value {
    let entries: Vec<_> = p
        .entries
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).expect("entries serialize");
            let d = entry_diff(e);
            if !d.is_empty() {
                v["diff"] = json!(d);
            }
            v
        })
        .collect();
    let removals: Vec<_> = p
        .removals
        .iter()
        .map(|r| {
            let path = r.path.display().to_string();
            json!({"path": path, "purpose": r.purpose, "diff": diff(&r.current, b"", &path, "/dev/null")})
        })
        .collect();
    json!({
        "purpose": p.purpose,
        "unit": p.unit,
        "converged": p.is_converged(),
        "vendor_source": p.vendor_source,
        "vendor_hash": p.vendor_hash,
        "argv": p.argv,
        "flags": p.flags.iter().map(|f| f.arg()).collect::<Vec<_>>(),
        "removed_flags": p.removed_flags,
        "entries": entries,
        "removals": removals,
        "actions": p.actions,
        "warnings": p.warnings,
        "notes": p.notes,
    })
}

/// The apply/remove report for people.
pub fn apply_text(r: &crate::apply::Report) -> String {
    let mut t = String::new();
    match (&r.error, r.changed) {
        (None, false) => {
            let _ = writeln!(t, "{}: nothing to do.", r.unit);
        }
        (None, true) => {
            let _ = writeln!(t, "{}: changed.", r.unit);
        }
        (Some(e), _) => {
            let _ = writeln!(
                t,
                "{}: FAILED at step \"{}\": {e}",
                r.unit,
                r.failed_step.as_deref().unwrap_or("?")
            );
        }
    }
    for f in &r.files {
        let _ = writeln!(t, "  {f}");
    }
    for a in &r.actions {
        let _ = writeln!(t, "  {a}");
    }
    if let (Some(old), Some(new)) = (r.old_main_pid, r.new_main_pid) {
        let _ = writeln!(t, "  main PID {old} -> {new}");
    }
    if let Some(ms) = r.first_event_ms {
        let _ = writeln!(t, "  first audit event {ms} ms after the restart");
    }
    if let Some(ms) = r.ready_ms {
        let _ = writeln!(t, "  serving (/readyz) {ms} ms after the restart");
    }
    match r.proof {
        Some(crate::prove::Proof::Event) => {
            let _ = writeln!(t, "  proof: a new audit event from the new process");
        }
        Some(crate::prove::Proof::Probe) => {
            let _ = writeln!(
                t,
                "  proof: the event of kaudit-node's probe request (no regular traffic was recorded)"
            );
        }
        Some(crate::prove::Proof::Process) => {
            let _ = writeln!(
                t,
                "  proof: the process alone (the policy records nothing kaudit-node can send; see the warning)"
            );
        }
        None => {}
    }
    if let Some(how) = &r.rollback {
        let _ = writeln!(t, "  rolled back: {how}");
    }
    for n in &r.notes {
        let _ = writeln!(t, "  note: {n}");
    }
    for w in &r.warnings {
        let _ = writeln!(t, "  warning: {w}");
    }
    t
}
