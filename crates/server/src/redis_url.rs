//! Redis URLs for the shared rate limiter: checked when the configuration is read, and turned
//! into a client when the limiter starts.

/// The Redis client of a `redis://` or `rediss://` (TLS) URL,
/// `[[user]:password@]host[:port][/db]`, without connecting. The user name and password are
/// percent-decoded and must be UTF-8 then.
pub fn redis_client(url: &str) -> Result<redis::Client, String> {
    let parsed = redis::parse_redis_url(url)
        .filter(|u| matches!(u.scheme(), "redis" | "rediss"))
        .ok_or("must be a redis:// or rediss:// URL")?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    let client =
        redis::Client::open(parsed).map_err(|e| format!("is not a valid Redis URL: {e}"))?;
    if client.get_connection_info().redis_settings().db() < 0 {
        return Err("the path must be a database number (/0)".into());
    }
    Ok(client)
}
