//! The operator's side of configuration offers (DESIGN §7, `core::offer`): what a member
//! runs to check an offered config, how its findings travel back in one verdict, and the
//! report `heartwire sync` and the cluster-wide `heartwire verify` print.
//!
//! A member checks an offer in a child process (`heartwire offer-check`, never in the
//! loop): it flushes the staged file to disk, runs every `verify` check on it for this
//! node except the comparison with the running cluster (the offer differs from it by
//! design), and prints one [`CheckVerdict`] as JSON. Findings travel as lines of
//! `severity TAB at TAB what TAB fix`, errors first, cut to fit one frame
//! ([`crate::wire::offer::TEXT_MAX`]); the counts are always exact.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::verify::{self, Finding, Options, Severity, VerifyReport};
use crate::wire::offer::TEXT_MAX;

/// What a member's check of an offer found (the child's one line of output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckVerdict {
    /// The config hash of the offered file as loaded for this node, hex (`None`: it does
    /// not load).
    pub config_hash: Option<String>,
    /// Errors found.
    pub errors: u16,
    /// Warnings found.
    pub warnings: u16,
    /// The findings, encoded (see the module docs).
    pub findings: String,
}

/// Checks the offer staged at `staged`, to be installed as `target`, for node `node`.
/// The staged file is first flushed to disk (a commit renames it into place). `socket`
/// is the running daemon's (for the service addresses it holds).
pub fn check(staged: &Path, target: &Path, node: &str, socket: Option<&Path>) -> CheckVerdict {
    if let Err(e) = std::fs::File::open(staged).and_then(|f| f.sync_all()) {
        return CheckVerdict {
            config_hash: None,
            errors: 1,
            warnings: 0,
            findings: encode(&[Finding {
                severity: Severity::Error,
                at: "host".into(),
                what: format!("cannot flush the staged config {}: {e}", staged.display()),
                fix: "check the disk holding the config directory".into(),
            }]),
        };
    }
    let opts = Options {
        node: Some(node.to_owned()),
        probe: true,
        socket: socket.map(Path::to_path_buf),
        offered: true,
        members: false,
    };
    let mut report = verify::verify(staged, &opts);
    // Name the file the operator knows, not the staging copy.
    let (from, to) = (staged.display().to_string(), target.display().to_string());
    for f in &mut report.findings {
        f.at = f.at.replace(&from, &to);
        f.what = f.what.replace(&from, &to);
    }
    verdict_of(&report)
}

fn verdict_of(report: &VerifyReport) -> CheckVerdict {
    let count = |s| u16::try_from(report.count(s)).unwrap_or(u16::MAX);
    CheckVerdict {
        config_hash: report.config_hash.clone(),
        errors: count(Severity::Error),
        warnings: count(Severity::Warning),
        findings: encode(&report.findings),
    }
}

/// Findings as lines, errors first, as many as fit in a verdict; a last line says how
/// many were left out.
pub fn encode(findings: &[Finding]) -> String {
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| f.severity);
    let clean = |s: &str| s.replace(['\t', '\n'], " ");
    let mut out = String::new();
    for (i, f) in sorted.iter().enumerate() {
        let line = format!(
            "{}\t{}\t{}\t{}\n",
            severity_name(f.severity),
            clean(&f.at),
            clean(&f.what),
            clean(&f.fix)
        );
        let left = sorted.len() - i;
        let note = format!(
            "warning\t\t{left} more findings not shown\trun heartwire verify on that node\n"
        );
        if out.len() + line.len() + note.len() > TEXT_MAX && left > 1 {
            out.push_str(&note);
            break;
        }
        if out.len() + line.len() > TEXT_MAX {
            out.push_str(&line[..floor_char_boundary(&line, TEXT_MAX - out.len())]);
            break;
        }
        out.push_str(&line);
    }
    out
}

/// Findings of node `node` from a verdict's text, each `at` prefixed with the node.
/// Lines that are not findings (an older or foreign sender) become one warning each.
pub fn decode(node: &str, text: &str) -> Vec<Finding> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut parts = l.splitn(4, '\t');
            let (sev, at, what, fix) = (parts.next(), parts.next(), parts.next(), parts.next());
            match (sev, at, what, fix) {
                (Some(s @ ("error" | "warning")), Some(at), Some(what), Some(fix)) => Finding {
                    severity: if s == "error" {
                        Severity::Error
                    } else {
                        Severity::Warning
                    },
                    at: if at.is_empty() {
                        format!("node {node}")
                    } else {
                        format!("node {node}: {at}")
                    },
                    what: what.to_owned(),
                    fix: fix.to_owned(),
                },
                _ => Finding {
                    severity: Severity::Error,
                    at: format!("node {node}"),
                    what: l.to_owned(),
                    fix: String::new(),
                },
            }
        })
        .collect()
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn floor_char_boundary(s: &str, mut at: usize) -> usize {
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The daemon's answer to `sync` and `verify-cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferReport {
    /// `installed` (every member installed and reloaded it), `verified` (every member
    /// found no error), `refused` (a member refused, answered another hash or did not
    /// answer: nothing installed anywhere), `failed` (committed, but a member failed to
    /// install or did not confirm).
    pub result: String,
    /// `install` or `verify`.
    pub mode: String,
    /// The offer's number at its origin.
    pub offer: u32,
    /// The node that offered it.
    pub origin: String,
    /// Config hash of the offered file at the origin, hex.
    pub config_hash: String,
    /// From the request to the result, µs.
    pub elapsed_us: u64,
    /// The origin's own install (sync): what its reload said.
    pub origin_reload: Option<String>,
    /// One entry per member asked.
    pub members: Vec<MemberAnswer>,
}

/// One member's answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAnswer {
    /// Its name.
    pub node: String,
    /// `sending`, `checking`, `judged`, `done` or `silent` (down, or no answer in time).
    pub state: String,
    /// Its verdict: accepted (no errors, installable by reload) or not; `None` without one.
    pub accepted: Option<bool>,
    /// The hash it computed, hex.
    pub config_hash: Option<String>,
    /// Errors it found.
    pub errors: u16,
    /// Warnings it found.
    pub warnings: u16,
    /// Its findings or reason, encoded (see the module docs).
    pub findings: String,
    /// Whether it installed and reloaded the config (`None`: no commit answered).
    pub installed: Option<bool>,
    /// What its install said (empty when it worked).
    pub detail: String,
}

impl OfferReport {
    /// The text `heartwire sync` prints.
    pub fn render(&self) -> String {
        let mut o = format!(
            "{} offer {} from {} (config {}): {} after {:.1} ms\n",
            self.mode,
            self.offer,
            self.origin,
            self.config_hash,
            self.result,
            self.elapsed_us as f64 / 1e3
        );
        if let Some(r) = &self.origin_reload {
            o.push_str(&format!("  {}: {r}\n", self.origin));
        }
        for m in &self.members {
            let verdict = match (m.accepted, m.installed) {
                (_, Some(true)) => "installed and reloaded".to_owned(),
                (_, Some(false)) => format!("install FAILED: {}", m.detail),
                (Some(true), None) => format!("accepted ({} warnings)", m.warnings),
                (Some(false), None) => format!("REFUSED ({} errors)", m.errors),
                (None, None) => format!("no verdict ({})", m.state),
            };
            o.push_str(&format!("  {}: {verdict}\n", m.node));
            for f in decode(&m.node, &m.findings) {
                o.push_str(&format!(
                    "    {} {}: {}{}\n",
                    severity_name(f.severity),
                    f.at,
                    f.what,
                    if f.fix.is_empty() {
                        String::new()
                    } else {
                        format!(" — fix: {}", f.fix)
                    }
                ));
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(severity: Severity, n: usize) -> Finding {
        Finding {
            severity,
            at: format!("cluster.toml:{n}"),
            what: format!("problem\t{n}"),
            fix: "fix it".into(),
        }
    }

    #[test]
    fn findings_round_trip_errors_first() {
        let fs = [finding(Severity::Warning, 1), finding(Severity::Error, 2)];
        let text = encode(&fs);
        let back = decode("b", &text);
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].severity, Severity::Error);
        assert_eq!(back[0].at, "node b: cluster.toml:2");
        assert_eq!(back[0].what, "problem 2", "tabs never split a field");
        assert_eq!(back[1].fix, "fix it");
    }

    #[test]
    fn many_findings_are_cut_with_a_count() {
        let fs: Vec<Finding> = (0..100).map(|n| finding(Severity::Error, n)).collect();
        let text = encode(&fs);
        assert!(text.len() <= TEXT_MAX, "{}", text.len());
        let back = decode("c", &text);
        let last = back.last().expect("some");
        assert!(last.what.ends_with("more findings not shown"), "{last:?}");
        let shown = back.len() - 1;
        assert!(
            last.what.starts_with(&format!("{} ", 100 - shown)),
            "{last:?}"
        );
    }

    #[test]
    fn stray_text_is_one_error_line() {
        let back = decode("d", "busy: this node holds offer 3");
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].severity, Severity::Error);
        assert_eq!(back[0].what, "busy: this node holds offer 3");
    }

    #[test]
    fn the_report_names_each_member_and_its_reasons() {
        let member = |node: &str, accepted, installed, findings: &str| MemberAnswer {
            node: node.into(),
            state: "judged".into(),
            accepted,
            config_hash: Some("00000000000000aa".into()),
            errors: u16::from(accepted == Some(false)),
            warnings: 0,
            findings: findings.into(),
            installed,
            detail: String::new(),
        };
        let r = OfferReport {
            result: "refused".into(),
            mode: "install".into(),
            offer: 2,
            origin: "a".into(),
            config_hash: "00000000000000aa".into(),
            elapsed_us: 1500,
            origin_reload: None,
            members: vec![
                member("b", Some(true), None, ""),
                member(
                    "c",
                    Some(false),
                    None,
                    "error\tcluster.toml:31\tpath e2: interface eth2 is down\tip link set eth2 up\n",
                ),
                member("d", None, None, ""),
            ],
        };
        let text = r.render();
        assert!(
            text.starts_with(
                "install offer 2 from a (config 00000000000000aa): refused after 1.5 ms\n"
            ),
            "{text}"
        );
        assert!(text.contains("  b: accepted (0 warnings)\n"), "{text}");
        assert!(text.contains("  c: REFUSED (1 errors)\n"), "{text}");
        assert!(
            text.contains("    error node c: cluster.toml:31: path e2: interface eth2 is down — fix: ip link set eth2 up\n"),
            "{text}"
        );
        assert!(text.contains("  d: no verdict (judged)\n"), "{text}");
    }
}
