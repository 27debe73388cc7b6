//! The promise file: the newest view this node agreed to, kept next to the control socket
//! (`<socket>.promise`) for the next daemon started on this host (`Node::resume_promise`).
//!
//! A node's agreement to a view is a promise its peers count on: a majority's word for a
//! view is what lets its members act, and what a node that left it lost. A daemon that
//! restarts (its sentinel, systemd, the operator) and forgot the promise could give its
//! word to a view its predecessor had already left, and hand a majority back to a member
//! cut off from the view the others formed (two owners: the sim's
//! `a_restarted_daemon_keeps_its_predecessors_word`). So the core hands every new
//! agreement to the daemon (`Action::Promise`) before any frame that carries it, and the
//! daemon writes it here first.
//!
//! One fixed-length line, written over itself with one `pwrite` from a stack buffer (no
//! allocation, no rename: a small write to a file in /run is a copy into memory). A host
//! reboot clears /run, and a reboot takes longer than any lease: by then the word of the
//! previous boot has run out everywhere. Format: `view N members 0xBITS`.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

/// The promise file's path for the daemon whose control socket is `socket`.
pub(crate) fn path(socket: &Path) -> PathBuf {
    socket.with_extension("promise")
}

/// Longest line: `view ` 20 digits ` members 0x` 16 digits and a newline.
const LINE_MAX: usize = 5 + 20 + 11 + 16 + 1;

/// The open promise file.
pub(crate) struct PromiseFile {
    file: File,
    path: PathBuf,
}

impl PromiseFile {
    /// Opens (creating) the file at `path` and reads the promise a previous daemon kept:
    /// `(number, members)`, or `None` for an empty file. A file that says something else
    /// is an error naming it.
    pub(crate) fn open(path: &Path) -> Result<(PromiseFile, Option<(u64, u64)>), String> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut &file, &mut text)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let kept = parse(&text).map_err(|e| format!("{}:1: {e}", path.display()))?;
        Ok((
            PromiseFile {
                file,
                path: path.to_owned(),
            },
            kept,
        ))
    }

    /// Keeps the promise: agreed to view (`number`, `members`) and nothing newer.
    pub(crate) fn keep(&self, number: u64, members: u64) -> std::io::Result<()> {
        let mut line = [b' '; LINE_MAX];
        let mut w = &mut line[..];
        write!(w, "view {number} members {members:#x}")?;
        line[LINE_MAX - 1] = b'\n';
        self.file.write_all_at(&line, 0)
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// What a file's text promises (`None`: nothing yet).
fn parse(text: &str) -> Result<Option<(u64, u64)>, String> {
    let line = text.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let bad = || format!("expected `view N members 0xBITS`, found `{line}`");
    let mut words = line.split_ascii_whitespace();
    let (Some("view"), Some(n), Some("members"), Some(m), None) = (
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
    ) else {
        return Err(bad());
    };
    let number = n.parse().map_err(|_| bad())?;
    let members = m
        .strip_prefix("0x")
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .ok_or_else(bad)?;
    Ok(Some((number, members)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_promise_is_kept_over_the_last_and_a_bad_file_says_where() {
        let dir = std::env::temp_dir().join(format!("hw-promise-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = path(&dir.join("heartwire.sock"));
        let (file, kept) = PromiseFile::open(&p).unwrap();
        assert_eq!(kept, None, "a new file promises nothing");
        file.keep(u64::MAX, u64::MAX).unwrap();
        file.keep(12, 0b101).unwrap();
        drop(file);
        assert_eq!(PromiseFile::open(&p).unwrap().1, Some((12, 0b101)));
        assert_eq!(
            std::fs::read_to_string(&p).unwrap().trim_end(),
            "view 12 members 0x5",
            "the shorter line covers the longer one"
        );
        std::fs::write(&p, "view twelve members 0x5\n").unwrap();
        let e = PromiseFile::open(&p).err().unwrap();
        assert!(
            e.ends_with(
                "heartwire.promise:1: expected `view N members 0xBITS`, found `view twelve members 0x5`"
            ),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
