//! `packaging/config.toml` documents every key with its default. Each
//! commented `#key = value` line, uncommented alone in its table, must be
//! accepted, and every key the configuration knows must be documented there.

use kaudit_node::config;

const DOC: &str = include_str!("../packaging/config.toml");

fn documented() -> Vec<(String, String)> {
    let mut table = String::new();
    let mut out = Vec::new();
    for line in DOC.lines() {
        let l = line.trim_start_matches('#').trim();
        if l.starts_with('[') && l.ends_with(']') && !l.contains(' ') {
            table = l.trim_matches(['[', ']']).to_string();
        } else if line.starts_with('#')
            && let Some((k, _)) = l.split_once(" = ")
            && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            out.push((table.clone(), l.to_string()));
        }
    }
    out
}

#[test]
fn every_documented_key_is_accepted() {
    let keys = documented();
    assert!(keys.len() >= 40, "only {} keys documented", keys.len());
    for (table, line) in keys {
        let mut text = String::new();
        if !table.is_empty() {
            text.push_str(&format!("[{table}]\n"));
        }
        if table == "webhook" && !line.starts_with("config ") {
            text.push_str("config = \"/etc/kubernetes/audit-webhook.kubeconfig\"\n");
        }
        if table == "log" && line.starts_with("batch_") {
            text.push_str("mode = \"batch\"\n");
        }
        text.push_str(&line);
        text.push('\n');
        if let Err(e) = config::from_str(None, &text) {
            panic!("documented line [{table}] {line} is refused: {e}");
        }
    }
}

#[test]
fn documented_defaults_are_the_defaults() {
    // Uncommenting every default gives the embedded defaults, except the
    // alternatives (policy.file, log.group), the keys whose default is "not
    // set" (batch, truncate, version: upstream's defaults apply), and the
    // optional [webhook] table.
    let mut text = String::new();
    let mut in_webhook = false;
    for line in DOC.lines() {
        let l = line.trim_start_matches('#').trim();
        if l.starts_with('[') && l.ends_with(']') && !l.contains(' ') {
            in_webhook = l == "[webhook]";
            if !in_webhook {
                text.push_str(&format!("{l}\n"));
            }
            continue;
        }
        let Some((k, _)) = l.split_once(" = ") else {
            continue;
        };
        let is_key = line.starts_with('#') && k.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        let unset = ["file", "group", "version"].contains(&k)
            || k.starts_with("batch_")
            || k.starts_with("truncate_");
        if is_key && !unset && !in_webhook {
            text.push_str(&format!("{l}\n"));
        }
    }
    let s = config::from_str(None, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let d = config::Settings::defaults();
    assert_eq!(s.log, d.log);
    assert_eq!(s.policy, d.policy);
    assert_eq!(s.policy_path, d.policy_path);
    assert_eq!(s.unit, d.unit);
    assert_eq!(s.apply, d.apply);
    assert_eq!(s.logrotate, d.logrotate);
    assert_eq!(s.webhook, None);
}
