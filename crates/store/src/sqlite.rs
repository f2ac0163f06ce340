//! The embedded default: one SQLite file in WAL mode, reached through rusqlite alone.
//!
//! Reads run on the calling thread on connections of their own ([`crate::sqlite_read`]); every
//! write runs on one writer thread ([`crate::sqlite_write`]). SQLite allows one writer at a time,
//! so nothing waits for the write lock but that thread.

use std::path::{Path, PathBuf};

use crate::engine::Engine;
use crate::shared::{Arg, FromCols};
use crate::sqlite_read::Readers;
use crate::sqlite_write::Writer;
use crate::writes::WriteJob;
use crate::{ConnectionUsage, Dialect, Result, StoreError};

pub struct SqliteStore {
    path: PathBuf,
    readers: Readers,
    writer: Writer,
    /// The directory of a `sqlite::memory:` database, removed with the store.
    _scratch: Option<tempfile::TempDir>,
}

impl SqliteStore {
    /// Opens the database of a `sqlite:` URL: `sqlite://PATH` or `sqlite:PATH` (a file,
    /// created with its directory when missing; `?mode=rw` refuses to create it) or
    /// `sqlite::memory:` (a database of this process alone, in a temporary directory that is
    /// removed when the store is dropped). The file is switched to WAL, with a busy timeout,
    /// `synchronous=NORMAL` (durable across a process crash; WAL makes it safe) and foreign
    /// keys on.
    pub async fn connect(url: &str) -> Result<Self> {
        let (path, scratch, create) = match location(url)? {
            Location::File { path, create } => (path, None, create),
            Location::Memory => {
                let dir = tempfile::Builder::new()
                    .prefix("oauth-sqlite-")
                    .tempdir()
                    .map_err(|e| {
                        StoreError::Internal(format!("creating a scratch database: {e}"))
                    })?;
                (dir.path().join("oauth.db"), Some(dir), true)
            }
        };
        if create {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Internal(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        // The writer opens (and creates) the file first and switches it to WAL.
        let writer = Writer::open(&path, create)?;
        let readers = Readers::open(&path)?;
        Ok(Self {
            path,
            readers,
            writer,
            _scratch: scratch,
        })
    }
}

/// The file a `sqlite:` URL names; an error for `sqlite::memory:`, which has none.
pub(crate) fn file_path(url: &str) -> Result<PathBuf> {
    match location(url)? {
        Location::File { path, .. } => Ok(path),
        Location::Memory => Err(StoreError::Internal(
            "an in-memory database has no file".into(),
        )),
    }
}

/// Where a `sqlite:` URL points.
#[derive(Debug, PartialEq)]
enum Location {
    File { path: PathBuf, create: bool },
    Memory,
}

fn location(url: &str) -> Result<Location> {
    let bad = |why: &str| StoreError::Internal(format!("bad SQLite URL: {why}"));
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| bad("it must start with sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut create = true;
    let mut memory = path == ":memory:";
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair {
            "mode=rwc" => create = true,
            "mode=rw" => create = false,
            "mode=memory" => memory = true,
            other => return Err(bad(&format!("unsupported option {other:?}"))),
        }
    }
    if memory {
        return Ok(Location::Memory);
    }
    if path.is_empty() {
        return Err(bad("no file named"));
    }
    Ok(Location::File {
        path: Path::new(path).to_owned(),
        create,
    })
}

impl Engine for SqliteStore {
    const DIALECT: Dialect = Dialect {
        insertion_order: "rowid",
        strpos: "instr",
        json_array_contains: "EXISTS (SELECT 1 FROM json_each(grant_types) WHERE value = {})",
        for_update: "",
        for_share: "",
        for_key_share: "",
        lock_to_delete: "",
        lock_key: "",
        row_id: "rowid",
        writes_in_with: false,
    };

    async fn point_read<T: FromCols + Send>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>> {
        self.readers.point_read(sql, args)
    }

    async fn rows_read<T: FromCols + Send>(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<T>> {
        self.readers.rows_read(sql, args)
    }

    async fn write<J: WriteJob>(&self, job: J) -> Result<J::Output> {
        self.writer.run(job).await
    }

    async fn run_migrations(&self) -> Result<()> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || crate::sqlite_migrate::run(&path))
            .await
            .map_err(|e| StoreError::Internal(format!("the migration task failed: {e}")))?
    }

    /// Closes the reader connections and stops the writer (after its queued jobs).
    async fn close_connections(&self) {
        self.readers.close();
        self.writer.close().await;
    }

    fn connection_usage(&self) -> ConnectionUsage {
        self.readers.usage()
    }
}

#[cfg(test)]
mod tests {
    use super::{location, Location};
    use std::path::PathBuf;

    #[test]
    fn urls_name_a_file_or_memory() {
        let file = |p: &str, create| Location::File {
            path: PathBuf::from(p),
            create,
        };
        let cases = [
            ("sqlite://data/oauth.db", file("data/oauth.db", true)),
            (
                "sqlite:///var/lib/oauth.db",
                file("/var/lib/oauth.db", true),
            ),
            ("sqlite:oauth.db", file("oauth.db", true)),
            ("sqlite://dir/oauth.db?mode=rwc", file("dir/oauth.db", true)),
            ("sqlite://oauth.db?mode=rw", file("oauth.db", false)),
            ("sqlite::memory:", Location::Memory),
            ("sqlite://x.db?mode=memory", Location::Memory),
        ];
        for (url, want) in cases {
            assert_eq!(location(url).ok(), Some(want), "{url}");
        }
        for url in ["postgres://x", "sqlite://", "sqlite://x.db?cache=shared"] {
            assert!(location(url).is_err(), "{url}");
        }
    }
}
