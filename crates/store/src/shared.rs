//! What the area modules share: JSON columns, row decoding (`Cols`, `FromCols`) for rusqlite
//! rows (SQLite) and sqlx rows (PostgreSQL) alike, bound parameters (`Arg`) and `WHERE` clause building.
//!
//! The SQL is written once with `$N` placeholders, numbered in order of first appearance, which
//! both engines bind by position. Where the dialects differ, the code asks `Engine::DIALECT`.
//!
//! **A row found by its key is found by its key only.** The statements that look up one consent
//! request, code or refresh token by its hash write every other condition on that row as
//! `(conditions) IS TRUE`, which filters exactly as the bare conditions do but which no index can
//! serve. These tables churn (rows are inserted, used and deleted by the thousand), so
//! PostgreSQL's statistics and index sizes lag behind them, and its planner can judge the index
//! of another column in the condition (`client_id`, `grant_id`, `expires_at`) cheaper than the
//! key's; a statement prepared under that judgement keeps its plan for the life of the
//! connection, and then reads every code of a client, or the index entry of every unexpired
//! request, to find one row. SQLite always takes the key here.

use crate::{Result, StoreError};

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(format!("encoding JSON: {e}")))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Internal(format!("decoding stored JSON: {e}")))
}

/// A column value both drivers can decode: rusqlite (SQLite) and sqlx (PostgreSQL).
pub(crate) trait Col:
    rusqlite::types::FromSql + sqlx::Type<sqlx::Postgres> + for<'r> sqlx::Decode<'r, sqlx::Postgres>
{
}

impl<T> Col for T where
    T: rusqlite::types::FromSql
        + sqlx::Type<sqlx::Postgres>
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
{
}

/// A result row, whatever read it: columns by name. The row decoders below are written once
/// against it.
pub(crate) trait Cols {
    fn col<T: Col>(&self, name: &str) -> Result<T>;

    /// The text of column `name`, lent to `f` where the row holds it (not copied into a
    /// `String` first: most such columns are parsed at once).
    fn with_text<R>(&self, name: &str, f: impl FnOnce(&str) -> R) -> Result<R>;

    /// A JSON column, decoded from the row's own text.
    fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T> {
        self.with_text(name, from_json)?
    }
}

impl Cols for sqlx::postgres::PgRow {
    fn col<T: Col>(&self, name: &str) -> Result<T> {
        Ok(sqlx::Row::try_get(self, name)?)
    }

    fn with_text<R>(&self, name: &str, f: impl FnOnce(&str) -> R) -> Result<R> {
        Ok(f(sqlx::Row::try_get::<&str, _>(self, name)?))
    }
}

/// A rusqlite row read by a decoder. rusqlite finds a column by name with a scan over all of the
/// statement's column names, so a decoder reading n columns would pay n² name comparisons on
/// every row (BENCHMARKS.md has what that cost). The decoders read columns in the order their
/// `SELECT` lists them, so this looks at the column after the last one read first (then at the
/// last one read again), and scans only when neither is the one asked for.
pub(crate) struct InOrder<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    next: std::cell::Cell<usize>,
    /// Columns found by a scan (the tests hold the hot decoders to none).
    scans: std::cell::Cell<u32>,
}

impl<'r, 's> InOrder<'r, 's> {
    pub(crate) fn new(row: &'r rusqlite::Row<'s>) -> Self {
        Self {
            row,
            next: std::cell::Cell::new(0),
            scans: std::cell::Cell::new(0),
        }
    }

    #[cfg(test)]
    pub(crate) fn scans(&self) -> u32 {
        self.scans.get()
    }

    fn index_of(&self, name: &str) -> rusqlite::Result<usize> {
        let stmt = self.row.as_ref();
        let next = self.next.get();
        // The column after the last one read, or the last one again (a joined row's key column,
        // read by `joined` and then by the row's decoder).
        for guess in [Some(next), next.checked_sub(1)].into_iter().flatten() {
            if stmt.column_name(guess).is_ok_and(|n| n == name) {
                // A name the row holds twice would be found first elsewhere by a scan (and by
                // PostgreSQL's decoding by name): the tests would see it here.
                debug_assert_eq!(stmt.column_index(name).ok(), Some(guess), "{name}");
                return Ok(guess);
            }
        }
        self.scans.set(self.scans.get() + 1);
        stmt.column_index(name)
    }
}

impl Cols for InOrder<'_, '_> {
    fn col<T: Col>(&self, name: &str) -> Result<T> {
        let i = self.index_of(name)?;
        self.next.set(i + 1);
        Ok(self.row.get(i)?)
    }

    fn with_text<R>(&self, name: &str, f: impl FnOnce(&str) -> R) -> Result<R> {
        let i = self.index_of(name)?;
        self.next.set(i + 1);
        match self.row.get_ref(i)? {
            rusqlite::types::ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => Ok(f(text)),
                Err(e) => Err(rusqlite::Error::FromSqlConversionFailure(
                    i,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
                .into()),
            },
            // What `col::<String>` would say of it (and of text that is not UTF-8, above).
            other => Err(
                rusqlite::Error::InvalidColumnType(i, name.to_owned(), other.data_type()).into(),
            ),
        }
    }
}

/// A value decoded from one row.
pub(crate) trait FromCols: Sized {
    fn from_cols(r: &impl Cols) -> Result<Self>;
}

/// A bound parameter of a read.
#[derive(Clone, Copy)]
pub(crate) enum Arg<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Arg::Text(v) => v.to_sql(),
            Arg::OptText(v) => v.to_sql(),
            Arg::Int(v) => v.to_sql(),
            Arg::OptInt(v) => v.to_sql(),
            Arg::Bool(v) => v.to_sql(),
        }
    }
}

/// The columns of a left-joined table, renamed `{prefix}{column}` so that they do not meet the
/// other table's, read by their plain names (so that the table's own decoder reads them).
struct Joined<'r, C> {
    row: &'r C,
    prefix: &'static str,
}

impl<C: Cols> Cols for Joined<'_, C> {
    fn col<T: Col>(&self, name: &str) -> Result<T> {
        self.row.col(&format!("{}{name}", self.prefix))
    }

    fn with_text<R>(&self, name: &str, f: impl FnOnce(&str) -> R) -> Result<R> {
        self.row.with_text(&format!("{}{name}", self.prefix), f)
    }
}

/// The left-joined row whose columns are renamed `{prefix}{column}`; `None` when the join found
/// none (its `key` column, never null in a row, is null).
pub(crate) fn joined<T: FromCols>(
    r: &impl Cols,
    prefix: &'static str,
    key: &str,
) -> Result<Option<T>> {
    let joined = Joined { row: r, prefix };
    match joined.col::<Option<String>>(key)? {
        Some(_) => T::from_cols(&joined).map(Some),
        None => Ok(None),
    }
}

/// `SELECT COUNT(*) AS n ...`
pub(crate) struct Count(pub i64);

impl FromCols for Count {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(Count(r.col("n")?))
    }
}

/// The row exists; its columns do not matter (`SELECT 1 AS one ...`).
pub(crate) struct Exists;

impl FromCols for Exists {
    fn from_cols(_: &impl Cols) -> Result<Self> {
        Ok(Exists)
    }
}

/// Escapes nothing: values always travel as bound parameters. This only builds the `WHERE`
/// clause's text with the right placeholder numbers.
pub(crate) struct Where {
    pub sql: String,
    pub next: usize,
}

impl Where {
    pub(crate) fn new(first: usize) -> Self {
        Self {
            sql: String::new(),
            next: first,
        }
    }

    /// Appends ` AND <fragment>`, where each `{}` in the fragment becomes the next placeholder.
    pub(crate) fn and(&mut self, fragment: &str) {
        let mut out = String::new();
        let mut parts = fragment.split("{}").peekable();
        while let Some(p) = parts.next() {
            out.push_str(p);
            if parts.peek().is_some() {
                out.push_str(&format!("${}", self.next));
                self.next += 1;
            }
        }
        self.sql.push_str(" AND ");
        self.sql.push_str(&out);
    }
}
