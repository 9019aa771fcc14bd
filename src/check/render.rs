//! The check's outputs: monitoring-plugin text, JSON, and node_exporter's
//! textfile format (written atomically).
//!
//! Monitoring-plugin text: one summary line `AUDIT STATE - …` with the
//! performance data after `|`, then one line per probe (the long output).
//! The summary names every probe at the worst states, worst first.

use std::fmt::Write as _;

use super::{State, Verdict};

/// `12`, `1.5`, `0.001`: no exponent, no trailing zeros.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The summary after `AUDIT STATE - `.
pub fn summary(r: &Verdict) -> String {
    let worst = r.state();
    if worst == State::Ok {
        let age = r
            .probe("log_age")
            .and_then(|p| p.metrics.iter().find(|m| m.name == "log_age_seconds"))
            .map(|m| {
                format!(
                    "; {} last written {}s ago",
                    r.log.display(),
                    num(m.value.round())
                )
            })
            .unwrap_or_default();
        return format!("{}: {} probes OK{age}", r.unit, r.probes.len());
    }
    let mut s = r
        .probes
        .iter()
        .filter(|p| p.state == worst)
        .map(|p| format!("{}: {}", p.name, p.reason))
        .collect::<Vec<_>>()
        .join("; ");
    let others: Vec<String> = [State::Warning, State::Unknown]
        .into_iter()
        .filter(|st| *st < worst)
        .filter_map(|st| {
            let n = r.probes.iter().filter(|p| p.state == st).count();
            (n > 0).then(|| format!("{n} {}", st.label().to_lowercase()))
        })
        .collect();
    if !others.is_empty() {
        s.push_str(&format!(" (also {})", others.join(", ")));
    }
    s
}

/// Performance data: `'log_age_seconds'=1.2s;300;900 …`.
pub fn perfdata(r: &Verdict) -> String {
    let mut out = Vec::new();
    for m in r.probes.iter().flat_map(|p| &p.metrics) {
        let mut fields = vec![
            m.warn.clone().unwrap_or_default(),
            m.crit.clone().unwrap_or_default(),
            m.min.map(num).unwrap_or_default(),
            m.max.map(num).unwrap_or_default(),
        ];
        while fields.last().is_some_and(String::is_empty) {
            fields.pop();
        }
        let mut s = format!("'{}'={}{}", m.name, num(m.value), m.unit);
        for f in fields {
            s.push(';');
            s.push_str(&f);
        }
        out.push(s);
    }
    out.join(" ")
}

/// Monitoring-plugin output.
pub fn nagios(r: &Verdict) -> String {
    let mut t = String::new();
    let perf = perfdata(r);
    let _ = write!(
        t,
        "AUDIT {} - {}",
        r.state().label(),
        summary(r).replace('|', "/")
    );
    if !perf.is_empty() {
        let _ = write!(t, " | {perf}");
    }
    t.push('\n');
    for p in &r.probes {
        let _ = writeln!(
            t,
            "[{}] {}: {}",
            p.state.label(),
            p.name,
            p.reason.replace('|', "/")
        );
    }
    t
}

/// Every probe, as one JSON object.
pub fn json(r: &Verdict) -> serde_json::Value {
    serde_json::json!({
        "unit": r.unit,
        "log": r.log,
        "state": r.state(),
        "exit_code": r.state().code(),
        "summary": summary(r),
        "probes": r.probes,
    })
}

fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A HELP text as the exposition format needs it: `\` as `\\` and a
/// line break as `\n` (`expfmt`'s `escapeString` for docstrings).
fn help_text(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// node_exporter's textfile format: `kaudit_node_*` gauges with HELP and
/// TYPE lines. Probe states are gauges of the monitoring-plugin codes
/// (0 ok, 1 warning, 2 critical, 3 unknown).
pub fn prometheus(r: &Verdict) -> String {
    let mut t = String::new();
    let unit = label_value(&r.unit);
    let _ = writeln!(
        t,
        "# HELP kaudit_node_status Overall state of kaudit-node check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (its exit code).\n# TYPE kaudit_node_status gauge\nkaudit_node_status{{unit=\"{unit}\"}} {}",
        r.state().code()
    );
    let _ = writeln!(
        t,
        "# HELP kaudit_node_probe_state State of one probe of kaudit-node check: 0 ok, 1 warning, 2 critical, 3 unknown.\n# TYPE kaudit_node_probe_state gauge"
    );
    for p in &r.probes {
        let _ = writeln!(
            t,
            "kaudit_node_probe_state{{probe=\"{}\",unit=\"{unit}\"}} {}",
            p.name,
            p.state.code()
        );
    }
    for m in r.probes.iter().flat_map(|p| &p.metrics) {
        let _ = writeln!(
            t,
            "# HELP kaudit_node_{0} {1}\n# TYPE kaudit_node_{0} gauge\nkaudit_node_{0}{{unit=\"{unit}\"}} {2}",
            m.name,
            help_text(m.help),
            num(m.value)
        );
    }
    t
}
