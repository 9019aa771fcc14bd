//! Build tasks of kaudit-node. Never packaged.
//!
//! `cargo xtask dist-assets [--out DIR]` writes everything the .deb and .rpm
//! need besides the binary, generated from the sources, into `target/assets/`
//! (or DIR):
//!
//! - `kaudit-node.8` (clap_mangen from `kaudit_node::cli::command()`, one
//!   section per subcommand, then the hand-written sections of
//!   `man/kaudit-node.8.extra`) and `kaudit-node.toml.5` (a copy of
//!   `man/kaudit-node.toml.5`), each also gzip'd (`*.gz`, no timestamp);
//! - `completions/{bash/kaudit-node, zsh/_kaudit-node, fish/kaudit-node.fish}`
//!   (clap_complete);
//! - `systemd/system/*` (a copy of `units/*`) and
//!   `systemd/system-preset/80-kaudit-node.preset`;
//! - `deb-scripts/{postinst,prerm,postrm}` and
//!   `rpm-scripts/{post,preun,postun}.sh`: `packaging/scripts/*` with the
//!   shared functions of `packaging/scripts/lib.sh` and the list of units
//!   filled in;
//! - `changelog.Debian`: one entry for the package version; `changelog.gz`:
//!   CHANGELOG.md, for the .deb's /usr/share/doc/kaudit-node/changelog.gz.
//!
//! The output depends only on the sources and on the date, which is
//! SOURCE_DATE_EPOCH, else the committer date of HEAD: the same commit gives
//! byte-identical files.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap_complete::Shell;
use flate2::{Compression, GzBuilder};

type Result<T> = std::result::Result<T, String>;

const BIN: &str = "kaudit-node";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args.first().map(String::as_str) {
        Some("dist-assets") => {
            let out = match args.get(1..).unwrap_or_default() {
                [] => None,
                [flag, dir] if flag == "--out" => Some(PathBuf::from(dir)),
                _ => {
                    eprintln!("usage: cargo xtask dist-assets [--out DIR]");
                    return ExitCode::from(64);
                }
            };
            dist_assets(out)
        }
        _ => {
            eprintln!(
                "usage: cargo xtask dist-assets [--out DIR]\n\n  dist-assets  man pages, completions, units and maintainer scripts into target/assets/"
            );
            return ExitCode::from(64);
        }
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is in the repository")
        .to_path_buf()
}

fn read(p: &Path) -> Result<String> {
    fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn write(p: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    fs::write(p, bytes).map_err(|e| format!("{}: {e}", p.display()))?;
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", p.display()))
}

/// gzip without a file name or time stamp (reproducible; lintian's
/// package-contains-timestamped-gzip).
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    e.write_all(bytes).expect("writes to a Vec");
    e.finish().expect("writes to a Vec")
}

fn dist_assets(out: Option<PathBuf>) -> Result<()> {
    let repo = repo();
    let out = out.unwrap_or_else(|| repo.join("target/assets"));
    if out.exists() {
        fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    let epoch = source_date_epoch(&repo)?;
    let version = env!("CARGO_PKG_VERSION");
    let mut written = Vec::new();
    let mut put = |rel: &str, bytes: &[u8], mode: u32| -> Result<()> {
        write(&out.join(rel), bytes, mode)?;
        written.push(rel.to_string());
        Ok(())
    };

    // Man pages.
    let extra = read(&repo.join("man/kaudit-node.8.extra"))?;
    let page8 = man_page(&date(epoch), &extra)?;
    put("kaudit-node.8", page8.as_bytes(), 0o644)?;
    put("kaudit-node.8.gz", &gzip(page8.as_bytes()), 0o644)?;
    let page5 = read(&repo.join("man/kaudit-node.toml.5"))?;
    put("kaudit-node.toml.5", page5.as_bytes(), 0o644)?;
    put("kaudit-node.toml.5.gz", &gzip(page5.as_bytes()), 0o644)?;

    // Completions.
    for (shell, rel) in [
        (Shell::Bash, "completions/bash/kaudit-node"),
        (Shell::Zsh, "completions/zsh/_kaudit-node"),
        (Shell::Fish, "completions/fish/kaudit-node.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut kaudit_node::cli::command(), BIN, &mut buf);
        put(rel, &buf, 0o644)?;
    }

    // Units: whatever is in units/, plus a preset that keeps
    // `systemctl preset` from enabling them (the admin enables the timer).
    let mut units = Vec::new();
    let units_dir = repo.join("units");
    if units_dir.is_dir() {
        for e in fs::read_dir(&units_dir).map_err(|e| format!("{}: {e}", units_dir.display()))? {
            let e = e.map_err(|e| format!("{}: {e}", units_dir.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_file() && !name.starts_with('.') {
                units.push(name);
            }
        }
    }
    units.sort();
    for u in &units {
        if !u.starts_with("kaudit-node") {
            return Err(format!(
                "units/{u}: packaged units must be named kaudit-node*, the preset covers only those"
            ));
        }
        put(
            &format!("systemd/system/{u}"),
            read(&units_dir.join(u))?.as_bytes(),
            0o644,
        )?;
    }
    put(
        "systemd/system-preset/80-kaudit-node.preset",
        read(&repo.join("packaging/systemd/80-kaudit-node.preset"))?.as_bytes(),
        0o644,
    )?;

    // Maintainer scripts: one shared library, two sets of entry points.
    let lib = read(&repo.join("packaging/scripts/lib.sh"))?;
    let lib = lib
        .lines()
        .filter(|l| !l.starts_with("#!") && !l.starts_with("# shellcheck shell="))
        .collect::<Vec<_>>()
        .join("\n");
    let lib = lib.replace("@UNITS@", &units.join(" "));
    for (src, dest) in [
        ("deb/postinst", "deb-scripts/postinst"),
        ("deb/prerm", "deb-scripts/prerm"),
        ("deb/postrm", "deb-scripts/postrm"),
        ("rpm/post.sh", "rpm-scripts/post.sh"),
        ("rpm/preun.sh", "rpm-scripts/preun.sh"),
        ("rpm/postun.sh", "rpm-scripts/postun.sh"),
    ] {
        let text = read(&repo.join("packaging/scripts").join(src))?;
        if !text.contains("#KAUDIT_LIB#\n") {
            return Err(format!("packaging/scripts/{src}: no #KAUDIT_LIB# line"));
        }
        let text = text.replace("#KAUDIT_LIB#\n", &format!("{lib}\n"));
        put(dest, text.as_bytes(), 0o755)?;
    }

    // A Debian changelog entry for this version (lintian: no-changelog).
    let changelog = format!(
        "kaudit-node ({version}-1) unstable; urgency=medium\n\n  * Release {version}. The changes are in /usr/share/doc/kaudit-node/CHANGELOG.md.\n\n -- {}  {}\n",
        maintainer(&repo)?,
        rfc2822(epoch)
    );
    put("changelog.Debian", changelog.as_bytes(), 0o644)?;
    // CHANGELOG.md as Debian names an upstream changelog.
    put(
        "changelog.gz",
        &gzip(read(&repo.join("CHANGELOG.md"))?.as_bytes()),
        0o644,
    )?;

    for w in &written {
        println!("{}", out.join(w).display());
    }
    Ok(())
}

/// The `maintainer` of `[package.metadata.deb]`, so that the changelog's
/// trailer names the same person.
fn maintainer(repo: &Path) -> Result<String> {
    let text = read(&repo.join("Cargo.toml"))?;
    let mut in_deb = false;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_deb = l == "[package.metadata.deb]";
        } else if in_deb
            && let Some(v) = l.strip_prefix("maintainer = \"")
            && let Some(v) = v.strip_suffix('"')
        {
            return Ok(v.to_string());
        }
    }
    Err("Cargo.toml: no maintainer in [package.metadata.deb]".into())
}

fn source_date_epoch(repo: &Path) -> Result<i64> {
    if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        return v
            .trim()
            .parse()
            .map_err(|_| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"));
    }
    let out = Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(repo)
        .output()
        .map_err(|e| format!("git: {e} (set SOURCE_DATE_EPOCH outside a git checkout)"))?;
    let s = String::from_utf8_lossy(&out.stdout);
    s.trim().parse().map_err(|_| {
        "no commit date from `git log` (set SOURCE_DATE_EPOCH outside a git checkout)".to_string()
    })
}

/// (year, month, day, weekday 0 = Sunday) of a Unix time, UTC.
fn civil(epoch: i64) -> (i64, u32, u32, usize, i64) {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    // Howard Hinnant's days_from_civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wd = (days + 4).rem_euclid(7) as usize;
    (y, m, d, wd, secs)
}

fn date(epoch: i64) -> String {
    let (y, m, d, _, _) = civil(epoch);
    format!("{y:04}-{m:02}-{d:02}")
}

fn rfc2822(epoch: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d, wd, s) = civil(epoch);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} +0000",
        DAYS[wd],
        MONTHS[m as usize - 1],
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The roff crate starts every rendering with this preamble (`\*(Aq`, a
/// straight apostrophe); the page has it once, at the top.
const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// One clap_mangen rendering, without the preamble.
fn rendered(render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> Result<String> {
    let mut buf = Vec::new();
    render(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8(buf).map_err(|e| e.to_string())?;
    Ok(text.strip_prefix(PREAMBLE).unwrap_or(&text).to_string())
}

/// A clap_mangen section without its `.SH` heading line.
fn body(render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> Result<String> {
    let text = rendered(render)?;
    let mut lines = text.lines();
    let mut out = String::new();
    if let Some(first) = lines.next()
        && !first.starts_with(".SH ")
    {
        out.push_str(first);
        out.push('\n');
    }
    for l in lines {
        if l.starts_with(".SH ") {
            return Err(format!(
                "clap_mangen rendered a second heading ({l}): help headings are not supported in the COMMANDS section"
            ));
        }
        out.push_str(l);
        out.push('\n');
    }
    Ok(out)
}

/// The visible subcommands, depth first, without clap's `help`.
fn commands(cmd: &clap::Command, out: &mut Vec<clap::Command>) {
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        out.push(sub.clone());
        commands(sub, out);
    }
}

/// kaudit-node(8): clap_mangen's NAME, SYNOPSIS, DESCRIPTION and OPTIONS of
/// the top-level command; a COMMANDS section with each subcommand's
/// synopsis, description and options; then `man/kaudit-node.8.extra`.
fn man_page(date: &str, extra: &str) -> Result<String> {
    let mut cmd = kaudit_node::cli::command();
    cmd.build();
    let version = cmd.get_version().unwrap_or_default().to_string();
    check_exit_codes(&cmd, extra)?;
    let man = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .date(date)
        .source(format!("kaudit-node {version}"))
        .manual("System Administration");
    let mut page = PREAMBLE.to_string();
    for part in [
        Man::render_title as fn(&Man, &mut dyn std::io::Write) -> std::io::Result<()>,
        Man::render_name_section,
        Man::render_synopsis_section,
        Man::render_description_section,
        Man::render_options_section,
    ] {
        page.push_str(&rendered(|w| part(&man, w))?);
    }
    page.push_str(".SH COMMANDS\n");
    let mut subs = Vec::new();
    commands(&cmd, &mut subs);
    for mut sub in subs {
        // Global options and --help are in OPTIONS above; --version too.
        let hidden: Vec<String> = sub
            .get_arguments()
            .filter(|a| a.is_global_set() || ["help", "version"].contains(&a.get_id().as_str()))
            .map(|a| a.get_id().to_string())
            .collect();
        for id in hidden {
            sub = sub.mut_arg(id, |a| a.hide(true));
        }
        let name = sub
            .get_bin_name()
            .unwrap_or_else(|| sub.get_name())
            .to_string();
        let m = clap_mangen::Man::new(sub);
        let _ = writeln!(page, ".SS \"{}\"", name.replace('-', "\\-"));
        page.push_str(&body(|w| m.render_synopsis_section(w))?);
        page.push_str(".PP\n");
        page.push_str(&body(|w| m.render_description_section(w))?);
        let opts = body(|w| m.render_options_section(w))?;
        if !opts.trim().is_empty() {
            page.push_str(".PP\nOptions:\n");
            page.push_str(&opts);
        }
    }
    page.push_str(extra);
    if !page.ends_with('\n') {
        page.push('\n');
    }
    Ok(page)
}

use clap_mangen::Man;

/// Every exit code the top-level `--help` lists must have an entry
/// (`.B CODE` on its own line) in the hand-written EXIT STATUS section.
fn check_exit_codes(cmd: &clap::Command, extra: &str) -> Result<()> {
    let help = cmd
        .get_after_help()
        .map(|s| s.to_string())
        .unwrap_or_default();
    let Some(list) = help.split("Exit codes:").nth(1) else {
        return Ok(());
    };
    let list = list.split("\n\n").next().unwrap_or_default();
    let mut missing = Vec::new();
    for tok in list.split(|c: char| !c.is_ascii_digit()) {
        if tok.is_empty() {
            continue;
        }
        if !extra.lines().any(|l| l == format!(".B {tok}")) {
            missing.push(tok.to_string());
        }
    }
    missing.dedup();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "man/kaudit-node.8.extra: EXIT STATUS has no `.B CODE` entry for {} (listed in the --help of src/cli.rs)",
            missing.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        // 2026-11-22 01:35:11 UTC, a Sunday.
        assert_eq!(rfc2822(1_795_311_311), "Sun, 22 Nov 2026 01:35:11 +0000");
        assert_eq!(date(951_782_400), "2000-02-29");
    }

    #[test]
    fn gzip_is_reproducible() {
        assert_eq!(gzip(b"abc"), gzip(b"abc"));
        // No MTIME (bytes 4..8), no FNAME flag.
        let g = gzip(b"abc");
        assert_eq!(&g[4..8], &[0, 0, 0, 0]);
        assert_eq!(g[3] & 0x08, 0);
    }
}
