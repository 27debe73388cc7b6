//! Reading the schema (`raw.rs`) from the TOML tree and writing it back in canonical
//! form, without serde.
//!
//! The `toml` crate parses the text into a tree whose every key and value keeps its span
//! (`toml::de::DeTable`); `toml_writer` quotes keys and strings. In between, this module
//! does what serde's derive did, as plain code: serde's generic deserializer, instantiated
//! for every schema struct, was 180 KB of the static binary and its serializer another
//! 43 KB, against the 2 MB target (DESIGN §3). The schema structs are declared with
//! [`schema!`], which generates both directions from one field list, so the two cannot
//! drift apart.
//!
//! The canonical text is what `toml`'s serializer wrote: per table, its values (scalars and
//! inline arrays) in schema order, then its sub-tables; a table's header only when it has a
//! value of its own or nothing at all (`[tie_breaker.devices]` alone, as before); tables
//! separated by one blank line.

use std::collections::BTreeMap;
use std::ops::Range;

use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};
use toml_writer::TomlWrite as _;

/// A schema error: where in the text, and what.
#[derive(Debug)]
pub(super) struct SchemaError {
    /// Byte range of the offending key, value or table.
    pub(super) span: Range<usize>,
    /// What is wrong, in the words serde used (`invalid type`, `unknown field`, ...).
    pub(super) message: String,
}

impl SchemaError {
    pub(super) fn new(span: Range<usize>, message: String) -> SchemaError {
        SchemaError { span, message }
    }

    fn invalid_type(v: &Spanned<DeValue<'_>>, expected: &str) -> SchemaError {
        let found = v.get_ref().type_str();
        SchemaError::new(
            v.span(),
            format!("invalid type: {found}, expected {expected}"),
        )
    }
}

impl From<toml::de::Error> for SchemaError {
    fn from(e: toml::de::Error) -> SchemaError {
        let span = e.span().unwrap_or(0..0);
        SchemaError::new(span, e.message().trim().to_owned())
    }
}

/// Parses `text` into the schema type `T` (the whole file is one table).
pub(super) fn read<T: Item>(text: &str) -> Result<T, SchemaError> {
    let root = DeTable::parse(text)?;
    let span = root.span();
    let root = Spanned::new(span, DeValue::Table(root.into_inner()));
    T::read(&root)
}

/// Writes `value`, a schema table, as a TOML document: its values, then its tables.
pub(super) fn write<T: Item>(value: &T) -> String {
    let mut w = Writer::default();
    value.write_fields(&mut w, Pass::Values);
    value.write_fields(&mut w, Pass::Tables);
    w.out
}

/// Which part of a table is being written: its `key = value` lines come before its
/// sub-tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pass {
    /// Scalars and inline arrays.
    Values,
    /// Sub-tables and arrays of tables.
    Tables,
}

/// The text being written and the dotted path of the table it is in.
#[derive(Debug, Default)]
pub(super) struct Writer {
    out: String,
    path: Vec<String>,
}

impl Writer {
    /// `key = value`, the value written by `value`.
    fn keyval(&mut self, key: &str, value: impl Fn(&mut String)) {
        // Writing to a String cannot fail.
        let _ = self.out.key(key);
        let _ = self.out.space();
        let _ = self.out.keyval_sep();
        let _ = self.out.space();
        value(&mut self.out);
        let _ = self.out.newline();
    }

    fn header(&mut self, array: bool) {
        if !self.out.is_empty() {
            let _ = self.out.newline();
        }
        let _ = if array {
            self.out.open_array_of_tables_header()
        } else {
            self.out.open_table_header()
        };
        for (i, k) in self.path.iter().enumerate() {
            if i > 0 {
                let _ = self.out.key_sep();
            }
            let _ = self.out.key(k.as_str());
        }
        let _ = if array {
            self.out.close_array_of_tables_header()
        } else {
            self.out.close_table_header()
        };
        let _ = self.out.newline();
    }

    /// Writes the table `key` of the current table: `fields` is called once per pass.
    fn table(&mut self, key: &str, array: bool, fields: impl Fn(&mut Writer, Pass)) {
        self.path.push(key.to_owned());
        let mut values = Writer::default();
        fields(&mut values, Pass::Values);
        let before = self.out.len();
        if array || !values.out.is_empty() {
            self.header(array);
            self.out.push_str(&values.out);
        }
        fields(self, Pass::Tables);
        if self.out.len() == before {
            self.header(false);
        }
        self.path.pop();
    }
}

/// A value of the schema: read from its place in the tree, written back.
pub(super) trait Item: Sized {
    /// A table (written as `[key]` or `[[key]]`), not a value.
    const TABLE: bool = false;

    /// Reads the value `v`.
    fn read(v: &Spanned<DeValue<'_>>) -> Result<Self, SchemaError>;

    /// The value of a key its table (at `table`) lacks: by default an error.
    fn absent(key: &str, table: Range<usize>) -> Result<Self, SchemaError> {
        Err(SchemaError::new(table, format!("missing field `{key}`")))
    }

    /// Writes `key` with this value in the pass it belongs to: by default `key = value`
    /// in the values pass.
    fn write(&self, key: &str, w: &mut Writer, pass: Pass) {
        if pass == Pass::Values {
            w.keyval(key, |out| self.write_value(out));
        }
    }

    /// The value as TOML (values only).
    fn write_value(&self, _out: &mut String) {}

    /// A table's own fields (tables only).
    fn write_fields(&self, _w: &mut Writer, _pass: Pass) {}
}

/// The keys of one table, checked against the schema's.
#[derive(Debug)]
pub(super) struct Fields<'t, 'i> {
    table: &'t DeTable<'i>,
    span: Range<usize>,
}

impl<'t, 'i> Fields<'t, 'i> {
    /// The table at `v`, refusing a key the schema (`keys`) does not have.
    pub(super) fn new(
        v: &'t Spanned<DeValue<'i>>,
        keys: &[&str],
    ) -> Result<Fields<'t, 'i>, SchemaError> {
        let DeValue::Table(table) = v.get_ref() else {
            return Err(SchemaError::invalid_type(v, "a table"));
        };
        for (k, _) in table.iter() {
            if !keys.contains(&k.get_ref().as_ref()) {
                let expected: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
                return Err(SchemaError::new(
                    k.span(),
                    format!(
                        "unknown field `{}`, expected one of {}",
                        k.get_ref(),
                        expected.join(", ")
                    ),
                ));
            }
        }
        Ok(Fields {
            table,
            span: v.span(),
        })
    }

    /// The value of `key`, or what its type says an absent key means.
    pub(super) fn get<T: Item>(&self, key: &str) -> Result<T, SchemaError> {
        match self.table.iter().find(|(k, _)| k.get_ref() == key) {
            Some((_, v)) => T::read(v),
            None => T::absent(key, self.span.clone()),
        }
    }
}

/// Declares a schema table: the struct, and its reading and writing in field order.
/// `field: Type = "key"`; `Option` fields may be absent, `Vec` fields default to empty.
macro_rules! schema {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty = $key:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug)]
        pub(super) struct $name {
            $($(#[$fm])* pub(super) $field: $ty,)*
        }

        impl $crate::config::tree::Item for $name {
            const TABLE: bool = true;

            fn read(
                v: &serde_spanned::Spanned<toml::de::DeValue<'_>>,
            ) -> Result<Self, $crate::config::tree::SchemaError> {
                let f = $crate::config::tree::Fields::new(v, &[$($key),*])?;
                Ok($name { $($field: f.get($key)?,)* })
            }

            fn write(
                &self,
                key: &str,
                w: &mut $crate::config::tree::Writer,
                pass: $crate::config::tree::Pass,
            ) {
                $crate::config::tree::write_table(self, key, w, pass);
            }

            fn write_fields(
                &self,
                w: &mut $crate::config::tree::Writer,
                pass: $crate::config::tree::Pass,
            ) {
                $($crate::config::tree::Item::write(&self.$field, $key, w, pass);)*
            }
        }
    };
}
pub(super) use schema;

/// Writes the table `value` under `key` (for [`schema!`]).
pub(super) fn write_table<T: Item>(value: &T, key: &str, w: &mut Writer, pass: Pass) {
    if pass == Pass::Tables {
        w.table(key, false, |w, p| value.write_fields(w, p));
    }
}

impl Item for String {
    fn read(v: &Spanned<DeValue<'_>>) -> Result<Self, SchemaError> {
        match v.get_ref() {
            DeValue::String(s) => Ok(s.to_string()),
            _ => Err(SchemaError::invalid_type(v, "a string")),
        }
    }

    fn write_value(&self, out: &mut String) {
        let _ = out.value(self.as_str());
    }
}

impl Item for bool {
    fn read(v: &Spanned<DeValue<'_>>) -> Result<Self, SchemaError> {
        match v.get_ref() {
            DeValue::Boolean(b) => Ok(*b),
            _ => Err(SchemaError::invalid_type(v, "a boolean")),
        }
    }

    fn write_value(&self, out: &mut String) {
        let _ = out.value(*self);
    }
}

/// An integer of the TOML text that fits `T`.
fn integer<T: TryFrom<i64>>(v: &Spanned<DeValue<'_>>, expected: &str) -> Result<T, SchemaError> {
    let DeValue::Integer(i) = v.get_ref() else {
        return Err(SchemaError::invalid_type(v, expected));
    };
    i64::from_str_radix(i.as_str(), i.radix())
        .ok()
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| {
            SchemaError::new(
                v.span(),
                format!(
                    "invalid value: integer `{}`, expected {expected}",
                    i.as_str()
                ),
            )
        })
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl Item for $t {
            fn read(v: &Spanned<DeValue<'_>>) -> Result<Self, SchemaError> {
                integer(v, stringify!($t))
            }

            fn write_value(&self, out: &mut String) {
                let _ = out.value(i64::from(*self));
            }
        }
    )*};
}
unsigned!(u8, u16, u32);

impl<T: Item> Item for Spanned<T> {
    const TABLE: bool = T::TABLE;

    fn read(v: &Spanned<DeValue<'_>>) -> Result<Self, SchemaError> {
        Ok(Spanned::new(v.span(), T::read(v)?))
    }

    fn write(&self, key: &str, w: &mut Writer, pass: Pass) {
        self.get_ref().write(key, w, pass);
    }

    fn write_value(&self, out: &mut String) {
        self.get_ref().write_value(out);
    }

    fn write_fields(&self, w: &mut Writer, pass: Pass) {
        self.get_ref().write_fields(w, pass);
    }
}

impl<T: Item> Item for Option<T> {
    fn read(v: &Spanned<DeValue<'_>>) -> Result<Self, SchemaError> {
        T::read(v).map(Some)
    }

    fn absent(_key: &str, _table: Range<usize>) -> Result<Self, SchemaError> {
        Ok(None)
    }

    fn write(&self, key: &str, w: &mut Writer, pass: Pass) {
        if let Some(v) = self {
            v.write(key, w, pass);
        }
    }
}

/// An array: of tables (`[[key]]`, absent means empty) or of values (inline).
impl<T: Item> Item for Vec<T> {
    fn read(v: &Spanned<DeValue<'_>>) -> Result<Self, SchemaError> {
        match v.get_ref() {
            DeValue::Array(items) => items.iter().map(T::read).collect(),
            _ => Err(SchemaError::invalid_type(v, "an array")),
        }
    }

    fn absent(key: &str, table: Range<usize>) -> Result<Self, SchemaError> {
        if T::TABLE {
            Ok(Vec::new())
        } else {
            Err(SchemaError::new(table, format!("missing field `{key}`")))
        }
    }

    fn write(&self, key: &str, w: &mut Writer, pass: Pass) {
        match (T::TABLE, pass) {
            (true, Pass::Tables) => {
                for item in self {
                    w.table(key, true, |w, p| item.write_fields(w, p));
                }
            }
            (false, Pass::Values) => w.keyval(key, |out| {
                let _ = out.open_array();
                for (i, item) in self.iter().enumerate() {
                    if i > 0 {
                        let _ = out.val_sep();
                        let _ = out.space();
                    }
                    item.write_value(out);
                }
                let _ = out.close_array();
            }),
            _ => {}
        }
    }
}

/// A table of strings keyed by name (a node's interface, address, device).
impl Item for BTreeMap<String, Spanned<String>> {
    const TABLE: bool = true;

    fn read(v: &Spanned<DeValue<'_>>) -> Result<Self, SchemaError> {
        let DeValue::Table(table) = v.get_ref() else {
            return Err(SchemaError::invalid_type(v, "a table"));
        };
        table
            .iter()
            .map(|(k, v)| Ok((k.get_ref().to_string(), Spanned::<String>::read(v)?)))
            .collect()
    }

    fn write(&self, key: &str, w: &mut Writer, pass: Pass) {
        write_table(self, key, w, pass);
    }

    fn write_fields(&self, w: &mut Writer, pass: Pass) {
        for (k, v) in self {
            v.write(k, w, pass);
        }
    }
}
