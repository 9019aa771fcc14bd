//! What `kaudit-node events` makes of any bytes as a log: the line splitter
//! (`events::source::Lines`, `trim`), the decoder (`events::event`) and the
//! filters (`events::filter`). A log is the apiserver's, but a crash, a
//! copytruncate or another writer can leave anything in it: no input may
//! panic, and the byte screen must never drop an event its filter selects
//! when the line is written as kube-apiserver's encoder writes it (here:
//! the event re-encoded by serde_json, which, like Go, escapes only what it
//! must besides `<`, `>` and `&`, values the screen does not use).

#![no_main]

use clap::Parser;
use kaudit_node::cli::{Cli, Command};
use kaudit_node::events::event::Event;
use kaudit_node::events::filter::Filter;
use kaudit_node::events::source::{Lines, Skipped, trim};
use libfuzzer_sys::fuzz_target;

const FILTERS: &[&[&str]] = &[
    &["--secrets"],
    &["--exec"],
    &["--rbac"],
    &["--denied"],
    &["--anonymous"],
    &["--user", "bob", "--verb", "get,list"],
    &["--resource", "pods/exec", "--namespace", "dev"],
    &["--code", "4xx", "--stage", "ResponseComplete"],
    &["--user", "a*", "--since", "2026-12-02T05:00:00Z"],
];

/// The filters, parsed once: clap and the screen's finders are built per
/// process, not per input.
fn filters() -> &'static [Filter] {
    static FILTERS_PARSED: std::sync::OnceLock<Vec<Filter>> = std::sync::OnceLock::new();
    FILTERS_PARSED.get_or_init(parse_filters)
}

fn parse_filters() -> Vec<Filter> {
    let now = "2026-12-02T06:00:00Z".parse().unwrap();
    FILTERS
        .iter()
        .map(|args| {
            let cli =
                Cli::try_parse_from(["kaudit-node", "events"].iter().chain(args.iter())).unwrap();
            let Command::Events(a) = cli.command else {
                unreachable!()
            };
            Filter::from_args(&a, now).unwrap()
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let filters = filters();
    let mut lines = Lines::new(data);
    let mut skipped = Skipped::default();
    let mut n = 0usize;
    while let Some(line) = lines.next_line().unwrap() {
        n += 1;
        assert!(n <= data.len() + 1, "more lines than bytes");
        let Some(bytes) = trim(line.bytes, &mut skipped) else {
            continue;
        };
        let Some(e) = Event::parse(bytes) else {
            continue;
        };
        // Fields events does not read are skipped unchecked (invalid UTF-8
        // in a body is no reason to drop the event): only lines that are
        // JSON throughout are re-encoded.
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
            continue;
        };
        let canonical = serde_json::to_vec(&value).unwrap();
        let again = Event::parse(&canonical).expect("a re-encoded event decodes");
        for f in filters {
            assert_eq!(
                f.matches(&e),
                f.matches(&again),
                "decoding depends on the spelling"
            );
            if f.matches(&again) {
                assert!(
                    f.may_match(&canonical),
                    "screened out: {}",
                    String::from_utf8_lossy(&canonical)
                );
            }
        }
    }
    assert!(skipped.nul_runs as usize <= 2 * n);
});
