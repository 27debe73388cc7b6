//! Renders heartwire's man pages and shell completions into a directory:
//!
//! - `man/heartwire.8` and `man/heartwire-<command>.8`: from the clap definitions in
//!   `src/cli.rs`, the same ones `--help` prints (clap_mangen);
//! - `man/heartwire.toml.5`: from `docs/configuration.md`, the configuration reference
//!   the README points to (a small Markdown-to-roff pass: the reference uses headings,
//!   paragraphs, lists, fenced blocks and inline code, nothing else);
//! - `completions/heartwire.bash`, `_heartwire` (zsh), `heartwire.fish` (clap_complete).
//!
//! Usage: `heartwire-docgen OUT_DIR` (`make man` writes `target/man`). Hidden commands
//! (`debug`, the daemon's helpers) get no page and no completion.

use std::path::Path;
use std::{fs, io};

use clap::CommandFactory;
use clap_complete::Shell;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: heartwire-docgen OUT_DIR");
        std::process::exit(2);
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if let Err(e) = generate(&root, Path::new(&out)) {
        eprintln!("heartwire-docgen: {e}");
        std::process::exit(1);
    }
}

/// Writes every page and completion under `out` from the sources under `root`.
fn generate(root: &Path, out: &Path) -> io::Result<()> {
    let man = out.join("man");
    let completions = out.join("completions");
    fs::create_dir_all(&man)?;
    fs::create_dir_all(&completions)?;
    for (name, page) in command_pages() {
        fs::write(man.join(name), page)?;
    }
    let reference = fs::read_to_string(root.join("docs/configuration.md"))?;
    fs::write(man.join("heartwire.toml.5"), config_page(&reference))?;
    for (shell, file) in [
        (Shell::Bash, "heartwire.bash"),
        (Shell::Zsh, "_heartwire"),
        (Shell::Fish, "heartwire.fish"),
    ] {
        fs::write(completions.join(file), completion(shell))?;
    }
    Ok(())
}

/// The command as clap builds it for `heartwire` itself, without the hidden commands
/// (clap_complete would offer them).
fn command() -> clap::Command {
    let full = heartwire::cli::Cli::command();
    let visible: Vec<clap::Command> = full
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let mut cmd = clap::Command::new("heartwire")
        .version(full.get_version().unwrap_or_default().to_owned())
        .about(full.get_about().cloned().unwrap_or_default())
        .subcommand_required(true)
        .subcommands(visible);
    if let Some(long) = full.get_long_about() {
        cmd = cmd.long_about(long.clone());
    }
    cmd.build();
    cmd
}

/// `heartwire.8` and one `heartwire-<command>.8` per visible command (section 8: an
/// administrator's daemon and tools).
fn command_pages() -> Vec<(String, Vec<u8>)> {
    let cmd = command();
    let mut pages = vec![("heartwire.8".to_owned(), render(cmd.clone()))];
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("heartwire-{}", sub.get_name());
        let sub = sub
            .clone()
            .name(name.clone())
            .bin_name(name.replace('-', " "));
        pages.push((format!("{name}.8"), render(sub)));
    }
    pages
}

fn render(cmd: clap::Command) -> Vec<u8> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("8")
        .manual("System Manager's Manual")
        .source(concat!("heartwire ", env!("CARGO_PKG_VERSION")))
        .render(&mut page)
        .expect("invariant: rendering into a Vec cannot fail");
    page
}

fn completion(shell: Shell) -> Vec<u8> {
    let mut cmd = command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "heartwire", &mut script);
    script
}

/// heartwire.toml(5) from the Markdown reference.
fn config_page(markdown: &str) -> String {
    let mut roff = String::from(
        ".TH HEARTWIRE.TOML 5 \"\" \"heartwire\" \"File Formats Manual\"\n\
         .SH NAME\nheartwire.toml \\- heartwire cluster configuration\n\
         .SH SYNOPSIS\n/etc/heartwire/heartwire.toml\n",
    );
    roff.push_str(&markdown_to_roff(markdown));
    roff.push_str(
        ".SH SEE ALSO\n\\fBheartwire\\fR(8), \\fBheartwire\\-verify\\fR(8), \
         \\fBheartwire\\-init\\fR(8)\n",
    );
    roff
}

/// The Markdown subset of the reference, in roff: `#` (the title, dropped: the page has
/// its own), `##` and `###` headings, paragraphs, `- ` lists, fenced blocks, inline code
/// and emphasis.
fn markdown_to_roff(md: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    let mut para_open = false;
    for line in md.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            out.push_str(if fenced {
                ".PP\n.nf\n.RS 2\n"
            } else {
                ".RE\n.fi\n"
            });
            para_open = false;
            continue;
        }
        if fenced {
            out.push_str(&escape_line(line));
            out.push('\n');
            continue;
        }
        if line.starts_with("# ") {
            continue;
        }
        if let Some(h) = line.strip_prefix("## ") {
            out.push_str(&format!(
                ".SH {}\n",
                escape_line(&inline(&h.to_uppercase()))
            ));
            para_open = false;
        } else if let Some(h) = line.strip_prefix("### ") {
            out.push_str(&format!(".SS {}\n", escape_line(&inline(h))));
            para_open = false;
        } else if line.trim().is_empty() {
            para_open = false;
        } else if let Some(item) = line.strip_prefix("- ") {
            out.push_str(".IP \\(bu 2\n");
            out.push_str(&escape_line(&inline(item)));
            out.push('\n');
            para_open = true;
        } else {
            if !para_open {
                out.push_str(".PP\n");
                para_open = true;
            }
            out.push_str(&escape_line(&inline(line.trim_start())));
            out.push('\n');
        }
    }
    out.replace(FONT, "\\")
}

/// A line that roff would read as a request (a leading `.` or `'`) is made text.
fn escape_line(line: &str) -> String {
    let line = line.replace('\\', "\\e");
    if line.starts_with('.') || line.starts_with('\'') {
        format!("\\&{line}")
    } else {
        line
    }
}

/// Stands for the backslash of a font escape until [`escape_line`] has escaped the text's
/// own backslashes.
const FONT: char = '\u{1}';

/// `code` and **bold** in bold, *emphasis* in italics (font escapes written with
/// [`FONT`]).
fn inline(text: &str) -> String {
    const B: &str = "\u{1}fB";
    const I: &str = "\u{1}fI";
    const R: &str = "\u{1}fR";
    let mut out = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let (open, close, font) = match c {
            '`' => ("`", "`", B),
            '*' if rest.starts_with("**") => ("**", "**", B),
            '*' => ("*", "*", I),
            _ => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
                continue;
            }
        };
        match rest[open.len()..].find(close) {
            Some(end) if end > 0 => {
                out.push_str(font);
                out.push_str(&rest[open.len()..open.len() + end]);
                out.push_str(R);
                rest = &rest[open.len() + end + close.len()..];
            }
            _ => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_visible_command_has_a_page_and_a_completion() {
        let pages = command_pages();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        for sub in [
            "run",
            "status",
            "init",
            "move",
            "maintenance",
            "cleanup",
            "verify",
        ] {
            assert!(
                names.contains(&format!("heartwire-{sub}.8").as_str()),
                "{names:?}"
            );
        }
        assert!(
            !names
                .iter()
                .any(|n| n.contains("debug") || n.contains("disk-servant"))
        );
        let top = String::from_utf8(pages[0].1.clone()).unwrap();
        assert!(top.starts_with(".ie \\n(.g .ds Aq") || top.contains(".TH heartwire 8"));
        assert!(
            top.contains("maintenance"),
            "the top page lists the commands"
        );
        let bash = String::from_utf8(completion(Shell::Bash)).unwrap();
        assert!(bash.contains("maintenance") && bash.contains("--foreground"));
        assert!(!bash.contains("disk-servant"));
    }

    #[test]
    fn the_reference_becomes_roff_with_its_blocks_and_fonts() {
        let roff = markdown_to_roff(
            "# title\n\n## Paths\n\nA `kind = \"ether\"` path, **raw** and *fast*.\n\n\
             - one\n- two\n\n```toml\n.dot = \"a\\\\b\"\n```\n",
        );
        assert!(!roff.contains("title"));
        assert!(roff.contains(
            ".SH PATHS\n.PP\nA \\fBkind = \"ether\"\\fR path, \\fBraw\\fR and \\fIfast\\fR.\n"
        ));
        assert!(roff.contains(".IP \\(bu 2\none\n.IP \\(bu 2\ntwo\n"));
        assert!(
            roff.contains(".nf\n.RS 2\n\\&.dot = \"a\\e\\eb\"\n.RE\n.fi\n"),
            "{roff}"
        );
    }
}
