//! Policy validation against fixtures.
//!
//! Every `tests/fixtures/policies/NNN-name.yaml` has a sidecar
//! `NNN-name.expected`: a `verdict: ok|warnings|errors` line, then the
//! exact diagnostics (`FILE:LINE:COL: SEVERITY: FIELD: MESSAGE (SUGGESTION)`,
//! FILE being the fixture's file name). The whole sidecar is compared; a
//! mismatch prints a unified diff. To regenerate the sidecars after an
//! intended change, run with `KAUDIT_BLESS=1` and review the diff.
//!
//! Fixtures 000–010 are every audit policy found in the seed documents
//! (`../shared/seeds/*.txt`, beside the repository); 020 and later are hand-made bad inputs.

use kaudit_node::policy::{Preset, Severity, Validation, validate};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policies")
}

fn fixture(name: &str) -> Validation {
    let bytes = std::fs::read(fixtures_dir().join(name)).expect("fixture");
    validate(name, &bytes)
}

fn verdict(report: &Validation) -> &'static str {
    if report.errors().next().is_some() {
        "errors"
    } else if report.warnings().next().is_some() {
        "warnings"
    } else {
        "ok"
    }
}

fn expected_text(report: &Validation) -> String {
    format!(
        "verdict: {}\n{}",
        verdict(report),
        report.render_text(false)
    )
}

#[test]
fn fixtures_match_their_expected_files() {
    let dir = fixtures_dir();
    let bless = std::env::var("KAUDIT_BLESS").is_ok_and(|v| !v.is_empty() && v != "0");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    let yamls: Vec<&String> = names.iter().filter(|n| n.ends_with(".yaml")).collect();
    assert!(yamls.len() >= 30, "fixtures missing: {names:?}");

    // Every sidecar belongs to a fixture.
    for n in names.iter().filter(|n| n.ends_with(".expected")) {
        let yaml = n.trim_end_matches(".expected").to_string() + ".yaml";
        assert!(names.contains(&yaml), "{n} has no {yaml}");
    }

    let mut failures = Vec::new();
    for name in yamls {
        let actual = expected_text(&fixture(name));
        let sidecar = dir.join(name.trim_end_matches(".yaml").to_string() + ".expected");
        if bless {
            std::fs::write(&sidecar, &actual).expect("write sidecar");
            continue;
        }
        let expected = std::fs::read_to_string(&sidecar).unwrap_or_default();
        if expected != actual {
            let diff = similar::TextDiff::from_lines(&expected, &actual)
                .unified_diff()
                .header(&format!("{name} (expected)"), &format!("{name} (actual)"))
                .to_string();
            failures.push(diff);
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The problem each bad input must be reported for, and where: so a careless
/// bless cannot silently accept a regression.
#[test]
fn bad_inputs_name_the_problem_and_its_place() {
    let cases: &[(&str, usize, usize, &str, &str)] = &[
        (
            "020-v1beta1.yaml",
            1,
            13,
            "apiVersion",
            "audit.k8s.io/v1beta1 was removed in Kubernetes 1.24",
        ),
        (
            "021-no-apiversion.yaml",
            1,
            1,
            "apiVersion",
            "missing apiVersion",
        ),
        (
            "022-zero-rules.yaml",
            3,
            1,
            "rules",
            "loaded illegal policy with 0 rules",
        ),
        ("023-empty.yaml", 1, 1, "", "empty policy"),
        (
            "024-level-everything.yaml",
            4,
            12,
            "rules[0].level",
            "Unsupported value: \"Everything\": supported values: \"None\", \"Metadata\", \"Request\", \"RequestResponse\"",
        ),
        (
            "025-level-lowercase.yaml",
            6,
            12,
            "rules[1].level",
            "Unsupported value: \"metadata\"",
        ),
        (
            "026-omitstages-bogus.yaml",
            5,
            5,
            "omitStages[1]",
            "Invalid value: \"Bogus\": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic",
        ),
        (
            "026-omitstages-bogus.yaml",
            8,
            18,
            "rules[0].omitStages[0]",
            "Invalid value: \"RequestRecieved\"",
        ),
        (
            "027-urls-with-resources.yaml",
            8,
            5,
            "rules[0].nonResourceURLs",
            "rules cannot apply to both regular resources and non-resource URLs",
        ),
        (
            "028-url-star-in-middle.yaml",
            6,
            9,
            "rules[0].nonResourceURLs[0]",
            "non-resource URL wildcards '*' must be the final character of the rule",
        ),
        (
            "029-url-without-slash.yaml",
            5,
            23,
            "rules[0].nonResourceURLs[0]",
            "non-resource URL rules must begin with a '/' character",
        ),
        (
            "030-group-with-version.yaml",
            7,
            16,
            "rules[0].resources[0].group",
            "Invalid value: \"rbac.authorization.k8s.io/v1\": a lowercase RFC 1123 subdomain",
        ),
        (
            "031-resourcenames-without-resources.yaml",
            7,
            9,
            "rules[0].resources[0].resourceNames",
            "using resourceNames requires at least one resource",
        ),
        (
            "032-duplicate-key.yaml",
            6,
            5,
            "rules[0]",
            "duplicate field \"level\"",
        ),
        (
            "033-non-utf8.yaml",
            5,
            15,
            "",
            "file is not valid UTF-8: byte 0xe9",
        ),
        ("034-alias-bomb.yaml", 7, 42, "", "alias bomb"),
        (
            "035-deep-nesting.yaml",
            3,
            72,
            "",
            "YAML nested deeper than 64 levels",
        ),
        ("036-broken-yaml.yaml", 6, 3, "", "invalid YAML"),
        ("037-tab-indented.yaml", 4, 2, "", "tabs"),
        (
            "038-wrong-types.yaml",
            3,
            20,
            "omitManagedFields",
            "expected a boolean, found a string (\"true\")",
        ),
        (
            "038-wrong-types.yaml",
            6,
            12,
            "rules[0].verbs",
            "expected a list of strings, found a string (\"delete\")",
        ),
        (
            "038-wrong-types.yaml",
            11,
            27,
            "rules[1].namespaces[1]",
            "expected a string, found a boolean (no)",
        ),
        (
            "038-wrong-types.yaml",
            12,
            12,
            "rules[2].level",
            "expected a string, found a boolean (yes)",
        ),
        (
            "038-wrong-types.yaml",
            14,
            16,
            "rules[3].resources",
            "expected a list of {group, resources} entries, found a string (\"\")",
        ),
        (
            "038-wrong-types.yaml",
            15,
            5,
            "rules[4]",
            "expected a mapping (a rule with a level), found a string (\"Metadata\")",
        ),
        (
            "039-misplaced-fields.yaml",
            3,
            1,
            "",
            "unknown field \"resources\"",
        ),
        (
            "039-misplaced-fields.yaml",
            10,
            9,
            "rules[0].resources[0]",
            "unknown field \"verbs\"",
        ),
        (
            "039-misplaced-fields.yaml",
            12,
            5,
            "rules[1]",
            "unknown field \"group\"",
        ),
        (
            "040-wrong-kind.yaml",
            2,
            7,
            "kind",
            "kind must be \"Policy\"",
        ),
        (
            "045-not-a-mapping.yaml",
            1,
            1,
            "",
            "expected a mapping (an audit.k8s.io/v1 Policy), found a list",
        ),
        (
            "046-two-documents.yaml",
            6,
            1,
            "",
            "a second YAML document starts here",
        ),
    ];
    for (name, line, column, field, needle) in cases {
        let report = fixture(name);
        let found = report.errors().any(|d| {
            d.line == *line
                && d.column == *column
                && d.field == *field
                && d.message.contains(needle)
        });
        assert!(
            found,
            "{name}: no error {line}:{column} {field:?} containing {needle:?}; got:\n{}",
            report.render_text(false)
        );
    }
}

#[test]
fn seed_004_is_rejected_naming_both_mistakes() {
    let report = fixture("010-seed004-sample-policy.yaml");
    assert!(!report.is_ok(false));
    let text = report.render_text(false);
    assert!(
        text.contains(":10:5: error: rules[0]: unknown field \"verb\" (did you mean \"verbs\"?)"),
        "{text}"
    );
    assert!(
        text.contains(
            ":12:7: error: rules[0].resources[0]: unknown field \"groups\" (did you mean \"group\"?"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            ":19:7: error: rules[1].resources[0]: unknown field \"groups\" (did you mean \"group\"?"
        ),
        "{text}"
    );
    // The suggestion says what `group` takes: one string, not a list.
    assert!(
        text.contains("it takes one API group as a string"),
        "{text}"
    );
}

#[test]
fn seed_policies_with_real_issues_are_flagged() {
    // "Performance Optimization" and "Dynamic Audit Configuration" log
    // Secrets at RequestResponse.
    for name in [
        "007-seed003-dynamic-config.yaml",
        "008-seed003-performance.yaml",
    ] {
        let report = fixture(name);
        assert!(
            report
                .warnings()
                .any(|d| d.message.contains("can log Secrets")
                    && d.message.contains("RequestResponse")),
            "{name}:\n{}",
            report.render_text(false)
        );
    }
    // The security-monitoring policy puts tokenreviews in the core group and
    // uses a wildcard user name that is compared literally.
    let report = fixture("004-seed003-security-monitoring.yaml");
    let text = report.render_text(false);
    assert!(
        text.contains("\"tokenreviews\" is not in the core API group"),
        "{text}"
    );
    assert!(
        text.contains("\"system:serviceaccount:kube-system:*\" is compared literally"),
        "{text}"
    );
    // The GCE-style policy's kube-admin Request rule is dead.
    let report = fixture("001-seed001-gce-style.yaml");
    assert!(
        report
            .warnings()
            .any(|d| d.rule == Some(13) && d.message.contains("never used"))
    );
    // The Metadata-only policies of seeds 000 and 002 are clean.
    for name in [
        "000-seed000-palette-metadata.yaml",
        "002-seed002-kind-metadata.yaml",
    ] {
        assert!(fixture(name).diagnostics.is_empty(), "{name}");
    }
}

#[test]
fn a_50_mib_input_is_rejected_before_parsing() {
    let mut big = b"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n".to_vec();
    let rule = b"  - level: Metadata\n    users: [\"someone\"]\n";
    while big.len() < 50 * 1024 * 1024 {
        big.extend_from_slice(rule);
    }
    let start = Instant::now();
    let report = validate("big.yaml", &big);
    assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
    assert_eq!(report.diagnostics.len(), 1);
    let d = &report.diagnostics[0];
    assert_eq!((d.severity, d.line, d.column), (Severity::Error, 1, 1));
    assert!(
        d.message.contains(&format!("file is {} bytes", big.len())),
        "{}",
        d.message
    );
    assert!(
        d.message
            .contains("larger than 4194304 bytes (4 MiB) are rejected"),
        "{}",
        d.message
    );
    assert_eq!(report.rules, 0);
}

#[test]
fn presets_are_clean_and_round_trip() {
    for p in Preset::ALL {
        let report = validate(p.name(), p.text().as_bytes());
        assert!(
            report.diagnostics.is_empty(),
            "preset {}:\n{}",
            p.name(),
            report.render_text(true)
        );
        assert!(report.is_ok(true));
        assert_eq!(p.name().parse::<Preset>(), Ok(p));
        assert!(!p.description().is_empty());
    }
    assert!("everything".parse::<Preset>().is_err());
}

#[test]
fn strict_mode_turns_warnings_into_errors() {
    let report = fixture("043-no-catch-all.yaml");
    assert_eq!(report.errors().count(), 0);
    assert!(report.warnings().count() > 0);
    assert!(report.is_ok(false));
    assert!(!report.is_ok(true));
    let strict = report.render_text(true);
    assert!(strict.lines().all(|l| l.contains(": error: ")), "{strict}");
    assert!(
        report
            .render_text(false)
            .lines()
            .all(|l| l.contains(": warning: "))
    );
}

#[test]
fn diagnostics_serialize_to_json() {
    let report = fixture("010-seed004-sample-policy.yaml");
    let json = serde_json::to_value(&report.diagnostics).expect("json");
    let first = json
        .as_array()
        .expect("array")
        .iter()
        .find(|d| d["severity"] == "error")
        .expect("an error");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["line"], 10);
    assert_eq!(first["column"], 5);
    assert_eq!(first["field"], "rules[0]");
    assert_eq!(first["rule"], 0);
    assert_eq!(first["message"], "unknown field \"verb\"");
    assert_eq!(first["suggestion"], "did you mean \"verbs\"?");
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic fuzz: mutate every fixture byte-wise.
    let dir = fixtures_dir();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let original = std::fs::read(&path).expect("read");
        if original.len() > 8192 {
            continue;
        }
        for _ in 0..50 {
            let mut bytes = original.clone();
            for _ in 0..=(next() % 4) {
                if bytes.is_empty() {
                    break;
                }
                let i = (next() as usize) % bytes.len();
                match next() % 3 {
                    0 => bytes[i] = (next() % 256) as u8,
                    1 => {
                        bytes.remove(i);
                    }
                    _ => bytes.insert(i, b"[]{}:-*&!|>'\"#\t\n "[(next() % 17) as usize]),
                }
            }
            let _ = validate("fuzz.yaml", &bytes);
        }
    }
}
