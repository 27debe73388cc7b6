//! Config errors that name the file, line, column and key.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a config was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// 1-based line (0 when the file could not be read).
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// Dotted key at fault, e.g. `path[1].timeout` (empty when unknown).
    pub key: String,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}: {}", self.file.display(), self.message);
        }
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.key,
            self.message
        )
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub(super) fn io(file: &Path, e: &std::io::Error) -> ConfigError {
        ConfigError {
            file: file.to_owned(),
            line: 0,
            col: 0,
            key: String::new(),
            message: format!("cannot read: {e}"),
        }
    }

    /// An error at byte `offset` of `text`, for `key`.
    pub(super) fn at(
        file: &Path,
        text: &str,
        offset: usize,
        key: &str,
        message: String,
    ) -> ConfigError {
        let (line, col) = line_col(text, offset);
        ConfigError {
            file: file.to_owned(),
            line,
            col,
            key: key.to_owned(),
            message,
        }
    }

    /// A syntax or schema error; the key is recovered from the source.
    pub(super) fn toml(file: &Path, text: &str, e: &super::tree::SchemaError) -> ConfigError {
        let offset = e.span.start;
        ConfigError::at(file, text, offset, &key_at(text, offset), e.message.clone())
    }
}

pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset);
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The dotted key at byte `offset`: the table from the last header above it (arrays of
/// tables numbered, `path[1]`) and the key left of `=` on its line.
fn key_at(text: &str, offset: usize) -> String {
    let offset = floor_char_boundary(text, offset);
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let mut table = String::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for l in text[..line_start].lines().chain(std::iter::once(line)) {
        let t = l.trim();
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let n = seen.entry(name.trim().to_owned()).or_insert(0);
            table = format!("{}[{n}]", name.trim());
            *n += 1;
        } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = name.trim().to_owned();
        }
    }
    if line.starts_with('[') {
        return table;
    }
    let key = line
        .split('=')
        .next()
        .filter(|_| line.contains('='))
        .map(str::trim)
        .unwrap_or("");
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key.to_owned(),
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_at_names_table_and_key() {
        let t = "[cluster]\nid = 1\n[[node]]\nname = \"a\"\n[[node]]\nid = 7\n";
        assert_eq!(key_at(t, t.find("id = 1").unwrap() + 5), "cluster.id");
        assert_eq!(key_at(t, t.rfind("id = 7").unwrap() + 5), "node[1].id");
        assert_eq!(key_at(t, t.find("name").unwrap()), "node[0].name");
        assert_eq!(key_at(t, 0), "cluster");
        assert_eq!(line_col(t, t.rfind("7").unwrap()), (6, 6));
    }
}
