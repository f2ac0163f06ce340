//! A minimal Redis client for the shared rate limiter (docs/rate-limits.md): RESP2 over plain
//! TCP, a few pooled connections, bounded replies and timeouts. It sends commands and reads
//! replies; pipelining, pub/sub, clusters and TLS are out of scope.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// Longest line (status, error, length header) and bulk string a reply may carry.
const MAX_LINE: u64 = 64 * 1024;
const MAX_BULK: usize = 1024 * 1024;
const MAX_ARRAY: usize = 4096;
const MAX_DEPTH: usize = 4;

/// Where Redis is: `redis://[[user]:password@]host[:port][/db]`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: u32,
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .finish()
    }
}

impl RedisTarget {
    pub fn parse(s: &str) -> Result<Self, String> {
        let url = url::Url::parse(s).map_err(|_| "is not a URL".to_owned())?;
        match url.scheme() {
            "redis" => {}
            "rediss" => {
                return Err(
                    "rediss (TLS) is not supported: reach Redis over a private network or a local TLS tunnel".into(),
                )
            }
            _ => return Err("must be a redis:// URL".into()),
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err("needs a host".into()),
        };
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not have a query or fragment".into());
        }
        let db = match url.path().trim_start_matches('/') {
            "" => 0,
            n => n
                .parse()
                .map_err(|_| "the path must be a database number (/0)".to_owned())?,
        };
        let username = match url.username() {
            "" => None,
            name => Some(userinfo(name)?),
        };
        let password = url.password().map(userinfo).transpose()?;
        Ok(Self {
            host,
            port: url.port().unwrap_or(6379),
            username,
            password,
            db,
        })
    }
}

/// The user name or password of the URL, percent-decoded (`+` stays itself in userinfo).
fn userinfo(s: &str) -> Result<String, String> {
    crate::form::percent_decode(s.as_bytes(), false, crate::form::BrokenEscape::Literal)
        .ok_or_else(|| "the user name and password must be UTF-8 once percent-decoded".to_owned())
}

/// One reply (RESP2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// Why a command got no usable reply. The connection is dropped after any of these.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis: {0}")]
    Io(#[from] std::io::Error),
    #[error("redis: timed out")]
    Timeout,
    #[error("redis: protocol error: {0}")]
    Protocol(&'static str),
    #[error("redis: {0}")]
    Server(String),
}

/// One connection.
pub struct Connection {
    stream: BufStream<TcpStream>,
}

impl Connection {
    /// Connects, authenticates and selects the database.
    pub async fn open(target: &RedisTarget, timeout: Duration) -> Result<Self, RedisError> {
        let tcp = tokio::time::timeout(
            timeout,
            TcpStream::connect((target.host.as_str(), target.port)),
        )
        .await
        .map_err(|_| RedisError::Timeout)??;
        tcp.set_nodelay(true)?;
        let mut conn = Connection {
            stream: BufStream::new(tcp),
        };
        if let Some(password) = &target.password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = &target.username {
                args.push(user.as_bytes());
            }
            args.push(password.as_bytes());
            conn.command(&args, timeout).await?.ok()?;
        }
        if target.db != 0 {
            let db = target.db.to_string();
            let args: [&[u8]; 2] = [b"SELECT", db.as_bytes()];
            conn.command(&args, timeout).await?.ok()?;
        }
        Ok(conn)
    }

    /// Sends one command and reads its reply. An error reply is `Ok(Reply::Error)`; the
    /// connection is still usable then, and unusable after any `Err`.
    pub async fn command(
        &mut self,
        args: &[&[u8]],
        timeout: Duration,
    ) -> Result<Reply, RedisError> {
        let mut buf = Vec::with_capacity(64 + args.iter().map(|a| a.len() + 16).sum::<usize>());
        buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        match tokio::time::timeout(timeout, self.round_trip(&buf)).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::Timeout),
        }
    }

    async fn round_trip(&mut self, request: &[u8]) -> Result<Reply, RedisError> {
        self.stream.write_all(request).await?;
        self.stream.flush().await?;
        read_reply(&mut self.stream, 0).await
    }
}

impl Reply {
    /// `+OK` (or any status) → `Ok`; an error reply → `Err`.
    fn ok(self) -> Result<(), RedisError> {
        match self {
            Reply::Status(_) => Ok(()),
            Reply::Error(e) => Err(RedisError::Server(e)),
            _ => Err(RedisError::Protocol("expected a status reply")),
        }
    }
}

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Result<Vec<u8>, RedisError> {
    let mut line = Vec::new();
    (&mut *r)
        .take(MAX_LINE)
        .read_until(b'\n', &mut line)
        .await?;
    if line.is_empty() {
        return Err(RedisError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    if !line.ends_with(b"\r\n") {
        return Err(RedisError::Protocol("line too long or not CRLF-terminated"));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn parse_int(s: &[u8]) -> Result<i64, RedisError> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(RedisError::Protocol("bad integer"))
}

fn read_reply<'a, R: tokio::io::AsyncBufRead + Unpin + Send>(
    r: &'a mut R,
    depth: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, RedisError>> + Send + 'a>> {
    Box::pin(async move {
        let line = read_line(r).await?;
        let (&kind, rest) = line
            .split_first()
            .ok_or(RedisError::Protocol("empty line"))?;
        let text = || String::from_utf8_lossy(rest).into_owned();
        match kind {
            b'+' => Ok(Reply::Status(text())),
            b'-' => Ok(Reply::Error(text())),
            b':' => Ok(Reply::Int(parse_int(rest)?)),
            b'$' => {
                let len = parse_int(rest)?;
                if len < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let len = usize::try_from(len).map_err(|_| RedisError::Protocol("bad length"))?;
                if len > MAX_BULK {
                    return Err(RedisError::Protocol("bulk string too long"));
                }
                let mut data = vec![0u8; len + 2];
                r.read_exact(&mut data).await?;
                if !data.ends_with(b"\r\n") {
                    return Err(RedisError::Protocol("bulk string not CRLF-terminated"));
                }
                data.truncate(len);
                Ok(Reply::Bulk(Some(data)))
            }
            b'*' => {
                let len = parse_int(rest)?;
                if len < 0 {
                    return Ok(Reply::Array(None));
                }
                let len = usize::try_from(len).map_err(|_| RedisError::Protocol("bad length"))?;
                if len > MAX_ARRAY || depth >= MAX_DEPTH {
                    return Err(RedisError::Protocol("array too long or too deep"));
                }
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    items.push(read_reply(r, depth + 1).await?);
                }
                Ok(Reply::Array(Some(items)))
            }
            _ => Err(RedisError::Protocol("unknown reply type")),
        }
    })
}

/// A few connections, opened on demand and dropped after any error; each command takes one
/// of them for its round trip.
pub struct Pool {
    target: RedisTarget,
    timeout: Duration,
    slots: Vec<Mutex<Option<Connection>>>,
    next: AtomicUsize,
}

impl Pool {
    pub fn new(target: RedisTarget, size: usize, timeout: Duration) -> Self {
        Self {
            target,
            timeout,
            slots: (0..size.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// One command on a pooled connection (opened when the slot is empty). After an `Err`
    /// the connection is closed; the next command on that slot opens a new one.
    pub async fn command(&self, args: &[&[u8]]) -> Result<Reply, RedisError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[i].lock().await;
        let conn = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(Connection::open(&self.target, self.timeout).await?),
        };
        let result = conn.command(args, self.timeout).await;
        if result.is_err() {
            *slot = None;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = RedisTarget::parse("redis://127.0.0.1").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.db), ("127.0.0.1", 6379, 0));
        assert_eq!(t.password, None);
        let t = RedisTarget::parse("redis://me:p%40ss@cache.internal:6380/2").unwrap();
        assert_eq!(t.host, "cache.internal");
        assert_eq!(t.port, 6380);
        assert_eq!(t.db, 2);
        assert_eq!(t.username.as_deref(), Some("me"));
        assert_eq!(t.password.as_deref(), Some("p@ss"));
        assert!(!format!("{t:?}").contains("p@ss"));
        let t = RedisTarget::parse("redis://:secret@[::1]").unwrap();
        assert_eq!(
            (t.host.as_str(), t.username, t.password.as_deref()),
            ("::1", None, Some("secret"))
        );
        for bad in [
            "rediss://127.0.0.1",
            "http://127.0.0.1",
            "redis:///0",
            "redis://127.0.0.1/x",
            "redis://127.0.0.1/0?x=1",
            "127.0.0.1:6379",
        ] {
            assert!(RedisTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn replies_are_parsed_and_bounded() {
        async fn parse(bytes: &[u8]) -> Result<Reply, RedisError> {
            let mut r = tokio::io::BufReader::new(bytes);
            read_reply(&mut r, 0).await
        }
        assert_eq!(parse(b"+OK\r\n").await.unwrap(), Reply::Status("OK".into()));
        assert_eq!(
            parse(b"-NOSCRIPT x\r\n").await.unwrap(),
            Reply::Error("NOSCRIPT x".into())
        );
        assert_eq!(parse(b":-7\r\n").await.unwrap(), Reply::Int(-7));
        assert_eq!(parse(b"$-1\r\n").await.unwrap(), Reply::Bulk(None));
        assert_eq!(
            parse(b"*2\r\n$3\r\nabc\r\n:1\r\n").await.unwrap(),
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"abc".to_vec())),
                Reply::Int(1)
            ]))
        );
        for bad in [
            &b""[..],
            b"+OK",
            b"?x\r\n",
            b":x\r\n",
            b"$5\r\nab\r\n",
            b"$3\r\nabcd\r\n",
            b"$99999999999\r\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
        ] {
            assert!(parse(bad).await.is_err(), "{bad:?}");
        }
    }
}
