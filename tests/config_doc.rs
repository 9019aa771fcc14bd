//! The configuration's keys and their documentation, both ways.
//! `packaging/config.toml` documents every key with its default: each
//! commented `#key = value` line, uncommented alone in its table, must be
//! accepted, and the defaults it shows must be the embedded ones. The other
//! way, every key the configuration's own structs know (serde's list of
//! fields) must be in packaging/config.toml, kaudit-node.toml(5),
//! docs/configuration.md and the Ansible role's defaults, argument specs and
//! template.

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

/// Every key of the configuration, from its own structs: serde's list of
/// expected fields in the error for an unknown key, table by table. A key
/// added to the structs is in this list without anyone touching the test.
fn known_keys() -> Vec<(String, String)> {
    let expected = |table: &str| -> Vec<String> {
        let text = if table.is_empty() {
            "zz_not_a_key = 1\n".to_string()
        } else {
            format!("[{table}]\nzz_not_a_key = 1\n")
        };
        let e = config::from_str(None, &text).unwrap_err().message;
        let list = e
            .split_once("expected ")
            .unwrap_or_else(|| panic!("no list of keys in: {e}"))
            .1;
        list.split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    let top = expected("");
    assert!(top.contains(&"log".to_string()), "{top:?}");
    let mut keys = Vec::new();
    for t in &top {
        if t == "unit" {
            keys.push((String::new(), t.clone()));
        } else {
            keys.extend(expected(t).into_iter().map(|k| (t.clone(), k)));
        }
    }
    keys
}

fn dotted(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    }
}

/// The other direction: every key the configuration knows is documented in
/// packaging/config.toml, kaudit-node.toml(5) (in its table's section),
/// docs/configuration.md's table, and is a variable of the Ansible role
/// (defaults, argument specs and the template).
#[test]
fn every_known_key_is_documented_everywhere() {
    let keys = known_keys();
    assert!(keys.len() >= 40, "{keys:?}");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let man = read("man/kaudit-node.toml.5");
    let reference = read("docs/configuration.md");
    let role = "contrib/ansible/roles/kaudit_node";
    let defaults = read(&format!("{role}/defaults/main.yml"));
    let specs = read(&format!("{role}/meta/argument_specs.yml"));
    let template = read(&format!("{role}/templates/config.toml.j2"));
    let documented: Vec<(String, String)> = documented()
        .into_iter()
        .map(|(t, line)| (t, line.split_once(" = ").unwrap().0.to_string()))
        .collect();
    let mut missing = Vec::new();
    for (table, key) in &keys {
        let name = dotted(table, key);
        if !documented.contains(&(table.clone(), key.clone())) {
            missing.push(format!("{name}: not in packaging/config.toml"));
        }
        // kaudit-node.toml(5): the key in bold in its table's section.
        let section = if table.is_empty() {
            ".SH TOP LEVEL".to_string()
        } else {
            format!(".SH [{table}]")
        };
        let body = man
            .split_once(&section)
            .map(|(_, rest)| rest.split("\n.SH ").next().unwrap())
            .unwrap_or("");
        // (or a `batch_*` family of keys).
        let in_man = body.lines().any(|l| {
            (l.starts_with(".B ") || l.starts_with(".BR "))
                && l.split([' ', '"', ','])
                    .any(|w| w == key || w.strip_suffix('*').is_some_and(|p| key.starts_with(p)))
        }) || body.contains(&format!("\\fB{key}\\fR"));
        if !in_man {
            missing.push(format!(
                "{name}: not in man/kaudit-node.toml.5 under {section}"
            ));
        }
        // docs/configuration.md: `table.key`, or a `table.prefix_*` row.
        let in_reference = reference.contains(&format!("`{name}`"))
            || reference
                .split('`')
                .filter_map(|w| w.strip_suffix('*'))
                .any(|prefix| name.starts_with(prefix) && prefix.contains('.'));
        if !in_reference {
            missing.push(format!("{name}: not in docs/configuration.md"));
        }
        let var = format!("kaudit_node_{}", name.replace('.', "_"));
        if !defaults.contains(&format!("\n{var}:")) {
            missing.push(format!("{name}: no {var} in the role's defaults"));
        }
        if !specs.contains(&format!(" {var}:")) {
            missing.push(format!("{name}: no {var} in the role's argument specs"));
        }
        // The template writes a key with its `kv('KEY', …)` macro, from the
        // variable by name or by the table's prefix (`batch_*` of both
        // backends).
        if !template.contains(&var) && !template.contains(&format!("kv('{key}'")) {
            missing.push(format!("{name}: {var} not in the role's config.toml.j2"));
        }
    }
    for (table, key) in &documented {
        if !keys.contains(&(table.clone(), key.clone())) {
            missing.push(format!(
                "{}: documented in packaging/config.toml but not a key",
                dotted(table, key)
            ));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
