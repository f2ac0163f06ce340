//! Connections that cost others: half-sent request heads, idle kept-alive connections and the
//! connection cap (`[server]`), over raw TCP sockets on 127.0.0.1.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestApp;

/// A request head cut before its end: the server waits for the rest.
const HALF_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.server.addr).await.unwrap()
}

/// `n` connections, each kept alive after one answered request.
async fn kept_alive(app: &TestApp, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        let mut s = connect(app).await;
        send_healthz(&mut s).await;
        assert_eq!(read_response(&mut s).await.0, 200);
        held.push(s);
    }
    held
}

async fn send_healthz(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
}

/// One HTTP/1.1 response (with a `content-length`): its status and body.
async fn read_response(stream: &mut (impl AsyncRead + Unpin)) -> (u16, String) {
    let (status, _, body) = read_answer(stream).await;
    (status, body)
}

/// One HTTP/1.1 response (with a `content-length`): its status, head and body.
async fn read_answer(stream: &mut (impl AsyncRead + Unpin)) -> (u16, String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed before a whole response");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .expect("a content-length");
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed inside a body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8(buf[head_end..head_end + length].to_vec()).unwrap();
    (status, head, body)
}

/// Waits (at most `bound`) for the server to close the connection: the read must return EOF,
/// with no byte before it.
async fn closed_by_server(stream: &mut (impl AsyncRead + Unpin), bound: Duration) {
    let mut byte = [0u8; 1];
    let n = tokio::time::timeout(bound, stream.read(&mut byte))
        .await
        .expect("the server closes the connection")
        .expect("a clean close (FIN), not a reset");
    assert_eq!(n, 0, "no answer, only the close");
}

#[tokio::test]
async fn three_hundred_half_sent_heads_neither_starve_others_nor_stay_open() {
    // The per-address share is off here: this is about the header timeout (the share is
    // `one_address_cannot_hold_every_connection`).
    let app = TestApp::spawn_with(|c| {
        c.server.header_read_timeout_ms = 500;
        c.server.max_connections_per_ip = 0;
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut s = connect(&app).await;
        s.write_all(HALF_HEAD).await.unwrap();
        slow.push(s);
    }
    // While they hang, another caller is served at once.
    let started = Instant::now();
    let r = app
        .http
        .get(app.at("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("/healthz answers while 300 sockets hold half a head");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"status":"ok"}"#);
    assert!(started.elapsed() < Duration::from_secs(5));
    // And every slow socket is closed after the header timeout.
    for s in &mut slow {
        closed_by_server(s, Duration::from_secs(15)).await;
    }
}

#[tokio::test]
async fn a_half_sent_head_is_closed_after_the_header_timeout() {
    let app = TestApp::spawn_with(|c| c.server.header_read_timeout_ms = 300).await;
    let started = Instant::now();
    let mut half = connect(&app).await;
    half.write_all(HALF_HEAD).await.unwrap();
    let mut silent = connect(&app).await;
    closed_by_server(&mut half, Duration::from_secs(10)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "not before the timeout: {:?}",
        started.elapsed()
    );
    // A connection that never sends a byte is on the same clock.
    closed_by_server(&mut silent, Duration::from_secs(10)).await;
    // The server still serves whole requests.
    let mut s = connect(&app).await;
    send_healthz(&mut s).await;
    assert_eq!(
        read_response(&mut s).await,
        (200, r#"{"status":"ok"}"#.to_owned())
    );
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let app = TestApp::spawn_with(|c| {
        c.server.header_read_timeout_ms = 300;
        c.server.idle_timeout_secs = 2;
    })
    .await;
    let mut s = connect(&app).await;
    send_healthz(&mut s).await;
    assert_eq!(read_response(&mut s).await.0, 200);
    // Idle longer than the header timeout: idle time is not header time, the connection
    // serves the next request.
    tokio::time::sleep(Duration::from_millis(800)).await;
    send_healthz(&mut s).await;
    assert_eq!(
        read_response(&mut s).await,
        (200, r#"{"status":"ok"}"#.to_owned())
    );
    let idle_from = Instant::now();
    closed_by_server(&mut s, Duration::from_secs(15)).await;
    assert!(
        idle_from.elapsed() >= Duration::from_millis(1500),
        "closed after the idle timeout, not before: {:?}",
        idle_from.elapsed()
    );
}

#[tokio::test]
async fn a_half_sent_head_after_an_idle_time_is_on_the_header_clock() {
    let app = TestApp::spawn_with(|c| {
        c.server.header_read_timeout_ms = 300;
        c.server.idle_timeout_secs = 60;
    })
    .await;
    let mut s = connect(&app).await;
    send_healthz(&mut s).await;
    assert_eq!(read_response(&mut s).await.0, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The next request starts but its head never ends: closed by the header timeout, long
    // before the idle timeout.
    s.write_all(HALF_HEAD).await.unwrap();
    closed_by_server(&mut s, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn a_request_body_that_stops_arriving_is_closed_after_the_idle_timeout() {
    // A header timeout far longer than the bound below: the idle clock is the one that closes.
    let app = TestApp::spawn_with(|c| {
        c.server.idle_timeout_secs = 1;
        c.server.header_read_timeout_ms = 60_000;
    })
    .await;
    let mut s = connect(&app).await;
    s.write_all(
        b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail=a",
    )
    .await
    .unwrap();
    let started = Instant::now();
    closed_by_server(&mut s, Duration::from_secs(15)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "after the idle timeout, not before: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_a_slot_frees() {
    let app = TestApp::spawn_with(|c| {
        c.server.max_connections = 2;
        c.server.header_read_timeout_ms = 30_000;
    })
    .await;
    // Two connections sending their heads slowly fill the cap.
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut s = connect(&app).await;
        s.write_all(HALF_HEAD).await.unwrap();
        holders.push(s);
    }
    // A third one is not served while they stay open...
    let mut third = connect(&app).await;
    send_healthz(&mut third).await;
    let mut byte = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_secs(1), third.read(&mut byte))
            .await
            .is_err(),
        "no answer past the cap"
    );
    // ...and is served once they close; then the server serves new connections again.
    drop(holders);
    let answered = tokio::time::timeout(Duration::from_secs(10), read_response(&mut third))
        .await
        .expect("served once a slot frees");
    assert_eq!(answered, (200, r#"{"status":"ok"}"#.to_owned()));
    let r = app
        .http
        .get(app.at("/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"status":"ok"}"#);
}

/// While every slot is taken, connections wait in the kernel's queue to be accepted: hundreds of
/// them are taken in at once (a queue of 128, the usual default, would drop the rest's attempts
/// to connect, which their kernels retry only after a second or more), and each is then served
/// in turn.
#[tokio::test]
async fn hundreds_of_connections_wait_in_the_queue_while_every_slot_is_taken() {
    let app = TestApp::spawn_with(|c| {
        c.server.max_connections = 1;
        c.server.max_connections_per_ip = 0;
    })
    .await;
    let mut holder = connect(&app).await;
    holder.write_all(HALF_HEAD).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let addr = app.server.addr;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..400 {
        set.spawn(async move {
            tokio::time::timeout(Duration::from_millis(800), TcpStream::connect(addr)).await
        });
    }
    let mut waiting = Vec::new();
    while let Some(r) = set.join_next().await {
        let connected = r.unwrap().expect("taken into the queue at once");
        waiting.push(connected.unwrap());
    }
    assert_eq!(waiting.len(), 400);
    // Served in turn once the slot frees: a request on the last one is answered.
    drop(holder);
    drop(waiting.drain(..399));
    let mut last = waiting.pop().unwrap();
    send_healthz(&mut last).await;
    let answered = tokio::time::timeout(Duration::from_secs(20), read_response(&mut last))
        .await
        .expect("served in turn");
    assert_eq!(answered.0, 200);
}

#[tokio::test]
async fn stopping_finishes_the_request_in_flight_and_closes_idle_connections() {
    let app = TestApp::spawn().await;
    let addr = app.server.addr;
    let mut idle = connect(&app).await;
    send_healthz(&mut idle).await;
    assert_eq!(read_response(&mut idle).await.0, 200);
    // A sign-in whose body is half sent: in flight in its handler (which reads the peer
    // address).
    let mut busy = connect(&app).await;
    let body = "email=a%40example.com&password=x";
    busy.write_all(
        format!(
            "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{}",
            body.len(),
            &body[..10]
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let TestApp { server, .. } = app;
    let stopping = tokio::spawn(server.stop());
    // The idle connection is closed at once and nothing new is accepted...
    closed_by_server(&mut idle, Duration::from_secs(10)).await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !stopping.is_finished(),
        "the stop waits for the request in flight"
    );
    // ...while the request in flight gets its answer (no login CSRF cookie: 403), then the
    // connection closes and the stop completes.
    busy.write_all(&body.as_bytes()[10..]).await.unwrap();
    let (status, page) = read_response(&mut busy).await;
    assert_eq!(status, 403);
    assert!(page.contains("Your sign-in form expired"), "{page}");
    closed_by_server(&mut busy, Duration::from_secs(10)).await;
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("the stop completes")
        .unwrap()
        .expect("a clean stop");
}

/// A connection to the server from the loopback address `from` (127.0.0.0/8 all reach it).
async fn connect_from(app: &TestApp, from: [u8; 4]) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
    socket.connect(app.server.addr).await.unwrap()
}

#[tokio::test]
async fn one_address_cannot_hold_every_connection() {
    let app = TestApp::spawn_with(|c| {
        c.server.max_connections = 8;
        c.server.max_connections_per_ip = 2;
        c.server.header_read_timeout_ms = 30_000;
    })
    .await;
    // 127.0.0.2 keeps two connections busy with cheap requests: its share.
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut s = connect_from(&app, [127, 0, 0, 2]).await;
        send_healthz(&mut s).await;
        assert_eq!(read_response(&mut s).await.0, 200);
        holders.push(s);
    }
    // A third from the same address is closed at once, unanswered.
    for _ in 0..3 {
        let mut extra = connect_from(&app, [127, 0, 0, 2]).await;
        let _ = extra
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await;
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut buf))
            .await
            .expect("closed at once, not left waiting");
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "no answer past the address's share: {read:?}"
        );
    }
    // Another address is served meanwhile, on a fresh connection.
    let mut other = connect_from(&app, [127, 0, 0, 3]).await;
    send_healthz(&mut other).await;
    assert_eq!(
        read_response(&mut other).await,
        (200, r#"{"status":"ok"}"#.to_owned())
    );
    // Once the holders close, the address gets its share back.
    drop(holders);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect_from(&app, [127, 0, 0, 2]).await;
    send_healthz(&mut again).await;
    assert_eq!(read_response(&mut again).await.0, 200);
}

#[tokio::test]
async fn a_body_sent_a_byte_at_a_time_gets_408_after_the_body_timeout() {
    // Each byte moves the idle clock, so only the body's own deadline ends this.
    let app = TestApp::spawn_with(|c| {
        c.server.body_read_timeout_ms = 1000;
        c.server.header_read_timeout_ms = 60_000;
    })
    .await;
    let s = connect(&app).await;
    let (mut read, mut write) = s.into_split();
    write
        .write_all(
            b"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ng",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if write.write_all(b"r").await.is_err() {
                return;
            }
        }
    });
    let (status, body) = tokio::time::timeout(Duration::from_secs(8), read_response(&mut read))
        .await
        .expect("an answer within the bound");
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("did not arrive within 1000 ms"), "{body}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    trickle.abort();
    // Closed: a FIN, or a reset when a trickled byte came after the server stopped reading.
    let mut byte = [0u8; 1];
    let after = tokio::time::timeout(Duration::from_secs(5), read.read(&mut byte))
        .await
        .expect("the server closes the connection");
    assert!(
        matches!(after, Ok(0)) || after.is_err(),
        "nothing after the answer but the close: {after:?}"
    );
    // The server still serves everyone else.
    let r = app.http.get(app.at("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// A chunked body framed wrongly is the request's mistake (400, the connection closed), not a
/// body over the limit; a chunked body that is over the limit is still 413.
#[tokio::test]
async fn a_malformed_chunked_body_is_a_bad_request_and_a_long_one_too_large() {
    let app = TestApp::spawn().await;
    const HEAD: &[u8] = b"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n";
    for bad in [&b"5\r\ngrant\r\nzz\r\n"[..], b"2\r\nabXX0\r\n\r\n"] {
        let mut s = connect(&app).await;
        s.write_all(&[HEAD, bad].concat()).await.unwrap();
        let (status, body) = read_response(&mut s).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("malformed or was cut off"), "{body}");
        closed_by_server(&mut s, Duration::from_secs(5)).await;
    }
    // One chunk a byte over the limit (65536), its end not sent: refused without it.
    let mut s = connect(&app).await;
    let chunk = [HEAD, b"10001\r\n", &[b'a'; 0x10001]].concat();
    s.write_all(&chunk).await.unwrap();
    let (status, body) = read_response(&mut s).await;
    assert_eq!(status, 413, "{body}");
}

/// A body in a transfer coding besides chunked (`gzip, chunked`) is refused with 501 before
/// any route reads it (the HTTP layer removes the chunking only, and the rest would be read as
/// the body), and the connection is closed; chunked alone is read as usual.
#[tokio::test]
async fn a_transfer_coding_besides_chunked_is_refused() {
    let app = TestApp::spawn().await;
    let body = b"grant_type=client_credentials";
    let chunked = [
        format!("{:x}\r\n", body.len()).as_bytes(),
        body,
        b"\r\n0\r\n\r\n",
    ]
    .concat();
    let head = |coding: &str| {
        format!(
            "POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: \
             application/x-www-form-urlencoded\r\nTransfer-Encoding: {coding}\r\n\r\n"
        )
    };
    for coding in ["gzip, chunked", "x-made-up, chunked", "Deflate,chunked"] {
        let mut s = connect(&app).await;
        s.write_all(&[head(coding).as_bytes(), &chunked].concat())
            .await
            .unwrap();
        let (status, body) = read_response(&mut s).await;
        assert_eq!(status, 501, "{coding}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"], "invalid_request", "{body}");
        assert!(
            json["error_description"]
                .as_str()
                .unwrap()
                .contains("transfer coding"),
            "{body}"
        );
        closed_by_server(&mut s, Duration::from_secs(5)).await;
    }
    // Chunked twice (in one field or two): the inner framing would be read as the body.
    for field in [
        "Transfer-Encoding: chunked, chunked",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
    ] {
        let mut s = connect(&app).await;
        let head = format!(
            "POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: \
             application/x-www-form-urlencoded\r\n{field}\r\n\r\n"
        );
        s.write_all(&[head.as_bytes(), &chunked].concat())
            .await
            .unwrap();
        let (status, body) = read_response(&mut s).await;
        assert_eq!(status, 400, "{field}: {body}");
        assert!(body.contains("chunked more than once"), "{body}");
        closed_by_server(&mut s, Duration::from_secs(5)).await;
    }
    // Chunked alone reaches the token endpoint, which reads the body (no client: 401).
    let mut s = connect(&app).await;
    s.write_all(&[head("chunked").as_bytes(), &chunked].concat())
        .await
        .unwrap();
    let (status, body) = read_response(&mut s).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("invalid_client"), "{body}");
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_before_it_is_sent() {
    let app = TestApp::spawn().await;
    let mut s = connect(&app).await;
    s.write_all(
        b"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000000\r\n\r\n",
    )
    .await
    .unwrap();
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), read_response(&mut s))
        .await
        .expect("answered without waiting for the body");
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("larger than 65536 bytes"), "{body}");
    closed_by_server(&mut s, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn idle_connections_give_way_when_every_slot_is_taken() {
    // The idle timeout is long: only the rule for a full server can free a slot in time.
    let app = TestApp::spawn_with(|c| {
        c.server.max_connections = 2;
        c.server.max_connections_per_ip = 0;
        c.server.header_read_timeout_ms = 500;
        c.server.idle_timeout_secs = 600;
    })
    .await;
    let holders = kept_alive(&app, 2).await;
    let mut waiting = connect(&app).await;
    send_healthz(&mut waiting).await;
    let answered = tokio::time::timeout(Duration::from_secs(8), read_response(&mut waiting))
        .await
        .expect("served long before the idle timeout");
    assert_eq!(answered, (200, r#"{"status":"ok"}"#.to_owned()));
    // At least one holder gave its slot up, closed by the server without an answer.
    let mut closed = 0;
    for mut h in holders {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_secs(3), h.read(&mut byte)).await {
            closed += 1;
        }
    }
    assert!(closed >= 1, "an idle holder was closed");
}

#[tokio::test]
async fn silent_and_slow_senders_give_way_when_every_slot_is_taken() {
    // The header and body timeouts are long: only the rule for a full server can free the one
    // slot in time. The holder sends nothing, half a head, or a head and then its body a byte
    // at a time (each byte keeps the idle clock from running out).
    for holder in ["silent", "half a head", "a slow body"] {
        let app = TestApp::spawn_with(|c| {
            c.server.max_connections = 1;
            c.server.max_connections_per_ip = 0;
            c.server.header_read_timeout_ms = 60_000;
            c.server.body_read_timeout_ms = 60_000;
            c.server.idle_timeout_secs = 600;
        })
        .await;
        let (mut held, mut write) = connect(&app).await.into_split();
        match holder {
            "silent" => {}
            "half a head" => write.write_all(HALF_HEAD).await.unwrap(),
            _ => write
                .write_all(
                    b"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ng",
                )
                .await
                .unwrap(),
        }
        let trickle = tokio::spawn(async move {
            for _ in 0..150 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if holder == "a slow body" && write.write_all(b"r").await.is_err() {
                    return;
                }
            }
        });
        // Another connection waits in the listen queue, and is served within seconds.
        let mut waiting = connect(&app).await;
        send_healthz(&mut waiting).await;
        let answered = tokio::time::timeout(Duration::from_secs(10), read_response(&mut waiting))
            .await
            .unwrap_or_else(|_| panic!("{holder}: served long before the timeouts"));
        assert_eq!(answered, (200, r#"{"status":"ok"}"#.to_owned()), "{holder}");
        // The holder was closed by the server, with no answer (a reset when a trickled byte
        // came after the server stopped reading).
        let mut byte = [0u8; 1];
        let after = tokio::time::timeout(Duration::from_secs(5), held.read(&mut byte))
            .await
            .unwrap_or_else(|_| panic!("{holder}: the server closes the connection"));
        assert!(
            matches!(after, Ok(0)) || after.is_err(),
            "{holder}: no answer, only the close: {after:?}"
        );
        trickle.abort();
    }
}

#[tokio::test]
async fn a_whole_request_is_answered_while_every_slot_is_taken_however_long_its_handler_waits() {
    // With one slot, the one connection makes the server full. Its request comes whole at
    // once, but its handler waits before it reads the body: authenticating a key used for the
    // first time writes to the database, which another process holds for three seconds. The
    // client is not the one keeping it: the answer comes.
    let app = TestApp::spawn_with(|c| {
        c.server.max_connections = 1;
        c.server.max_connections_per_ip = 0;
    })
    .await;
    let c = app
        .create_client(
            &app.admin_key,
            crate::support::confidential_client("Waiting"),
        )
        .await;
    let id = c["client_id"].as_str().unwrap().to_owned();
    let member = app.user("member@example.com", "default").await;
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let db = app.database_url.clone();
    let holder = std::thread::spawn(move || {
        let conn = crate::support::sqlite(&db);
        conn.execute_batch("BEGIN IMMEDIATE;").unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_secs(3));
        conn.execute_batch("COMMIT;").unwrap();
    });
    locked_rx.recv().unwrap();
    let started = Instant::now();
    let mut s = connect(&app).await;
    let body = r#"{"name":"Renamed while full"}"#;
    s.write_all(
        format!(
            "PUT /oauth_clients/{id} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            member.api_key,
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (status, answer) = tokio::time::timeout(Duration::from_secs(15), read_response(&mut s))
        .await
        .expect("an answer");
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("Renamed while full"), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "the handler waited for the database: {:?}",
        started.elapsed()
    );
    holder.join().unwrap();
}

#[tokio::test]
async fn a_request_head_far_over_64_kib_is_refused() {
    let app = TestApp::spawn().await;
    let mut s = connect(&app).await;
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    // The server may close while the rest is still being written.
    let _ = s.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // A head under the limit is served.
    let mut s = connect(&app).await;
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    s.write_all(head.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut s).await.0, 200);
}

#[tokio::test]
async fn connections_always_in_a_request_give_way_when_every_slot_is_taken() {
    // Two connections that start their next request as soon as an answer comes, each head
    // taking 300 ms: never idle, they would hold both slots for ever.
    let app = TestApp::spawn_with(|c| {
        c.server.max_connections = 2;
        c.server.max_connections_per_ip = 0;
        c.server.header_read_timeout_ms = 5_000;
        c.server.idle_timeout_secs = 600;
    })
    .await;
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut s = connect(&app).await;
        busy.push(tokio::spawn(async move {
            for _ in 0..30 {
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
                s.write_all(b"\r\n").await.unwrap();
                let (status, head, _) = read_answer(&mut s).await;
                assert_eq!(status, 200);
                if head.to_ascii_lowercase().contains("connection: close") {
                    closed_by_server(&mut s, Duration::from_secs(5)).await;
                    return true;
                }
            }
            false
        }));
    }
    // Both hold their slots now; a third connection waits, and is served once one gives way.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut waiting = connect(&app).await;
    send_healthz(&mut waiting).await;
    let answered = tokio::time::timeout(Duration::from_secs(6), read_response(&mut waiting))
        .await
        .expect("served while the busy connections keep sending");
    assert_eq!(answered.0, 200);
    for b in busy {
        assert!(b.await.unwrap(), "a busy connection was told to close");
    }
}

/// RFC 9112 §3.2: an HTTP/1.1 request without `Host`, or any request with two, is answered 400,
/// before any route reads its credentials: good client credentials get no token. HTTP/1.0 may
/// omit `Host`.
#[tokio::test]
async fn a_request_without_one_host_field_is_a_bad_request() {
    let app = TestApp::spawn().await;
    let (id, secret) = crate::oauth_support::cc_client(&app).await;
    let auth = crate::oauth_support::basic(&id, &secret);
    let form = "grant_type=client_credentials";
    let token_request = |host_lines: &str| {
        format!(
            "POST /oauth/token HTTP/1.1\r\n{host_lines}Authorization: {auth}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
    };
    for (host_lines, refused) in [
        ("", true),
        ("Host: 127.0.0.1\r\nHost: attacker.example\r\n", true),
        ("Host: a b@c:99999\r\n", true),
        ("Host: user@127.0.0.1\r\n", true),
        ("Host: 127.0.0.1\r\n", false),
        ("Host: [::1]:8080\r\n", false),
    ] {
        let mut s = connect(&app).await;
        s.write_all(token_request(host_lines).as_bytes())
            .await
            .unwrap();
        let (status, body) = read_response(&mut s).await;
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        if refused {
            assert_eq!(status, 400, "{host_lines:?}: {body}");
            assert_eq!(body["error"], "invalid_request", "{body}");
            assert!(
                body["error_description"].as_str().unwrap().contains("Host"),
                "{body}"
            );
            assert!(body.get("access_token").is_none(), "{body}");
        } else {
            assert_eq!(status, 200, "{body}");
            assert!(body["access_token"].is_string(), "{body}");
        }
    }
    let mut s = connect(&app).await;
    s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").await.unwrap();
    assert_eq!(read_response(&mut s).await.0, 200);
}
