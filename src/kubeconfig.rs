//! A light check of the webhook backend's kubeconfig: parsable, of kind
//! `Config`, with a cluster that has a server. Its credentials are never
//! printed: messages name fields, not values.

use serde::Deserialize;

#[derive(Deserialize)]
struct Kubeconfig {
    kind: Option<String>,
    #[serde(default)]
    clusters: Vec<NamedCluster>,
}

#[derive(Deserialize)]
struct NamedCluster {
    name: Option<String>,
    cluster: Option<Cluster>,
}

#[derive(Deserialize)]
struct Cluster {
    server: Option<String>,
}

/// `Err(reason)` when the text is not a usable kubeconfig.
pub fn check(text: &str) -> Result<(), String> {
    let k: Kubeconfig = serde_saphyr::from_str(text).map_err(|e| {
        // The parser's message may quote the input; keep only its location.
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or("").to_string();
        if first.contains("line") {
            format!("YAML error ({})", location_of(&first))
        } else {
            "YAML error".to_string()
        }
    })?;
    if let Some(kind) = &k.kind
        && kind != "Config"
    {
        return Err(format!(
            "kind is \"{}\", expected \"Config\"",
            kind.escape_debug()
        ));
    }
    if k.clusters.is_empty() {
        return Err("no clusters: the webhook needs clusters[].cluster.server".into());
    }
    for (i, c) in k.clusters.iter().enumerate() {
        let server = c
            .cluster
            .as_ref()
            .and_then(|c| c.server.as_deref())
            .unwrap_or("");
        if server.is_empty() {
            let name = c.name.as_deref().unwrap_or("");
            return Err(format!("clusters[{i}] ({name}) has no cluster.server"));
        }
    }
    Ok(())
}

fn location_of(msg: &str) -> String {
    match msg.find("line") {
        Some(i) => msg[i..]
            .chars()
            .take_while(|c| *c != ')' && *c != ':')
            .collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_seed_003_webhook_kubeconfig() {
        let t = "apiVersion: v1\nkind: Config\nclusters:\n- name: audit-webhook\n  cluster:\n    server: https://audit-collector.example.com/api/v1/events\ncontexts:\n- name: default\n  context:\n    cluster: audit-webhook\n    user: audit-user\ncurrent-context: default\nusers:\n- name: audit-user\n  user:\n    client-key-data: c2VjcmV0\n";
        assert_eq!(check(t), Ok(()));
    }

    #[test]
    fn rejects_bad_ones() {
        assert!(
            check("kind: Policy\nclusters: []\n")
                .unwrap_err()
                .contains("kind")
        );
        assert!(check("kind: Config\n").unwrap_err().contains("no clusters"));
        assert!(
            check("kind: Config\nclusters:\n- name: a\n  cluster: {}\n")
                .unwrap_err()
                .contains("no cluster.server")
        );
        let e = check("kind: [\nclient-key-data: c2VjcmV0\n").unwrap_err();
        assert!(!e.contains("c2VjcmV0"), "{e}");
    }
}
