//! TLS on the embassy path: the runner's `run_dialed` over `tls::TlsDialer` (embedded-tls on a
//! blocking loopback TCP stream) against an in-process rustls 0.23 server whose certificates
//! come from a private CA (rcgen). Events are delivered with the right CA, and session after
//! session when the server closes connections; with a wrong CA, an expired certificate or a
//! wrong host name, the handshake fails with a typed error, the server gets no request, and
//! the events stay queued; without a wall clock nothing is dialed until it is set.
#![cfg(all(feature = "embassy", feature = "tls"))]

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use embassy_futures::select::{select, Either};
use posthog_embedded::adapters::embassy::{self, Buffers, Posthog, Runner, State};
use posthog_embedded::capture::EventOptions;
use posthog_embedded::client::{Client, Config, TransportError};
use posthog_embedded::resources::Resources;
use posthog_embedded::tls::{CertError, TlsBuffers, TlsDialer, TlsFailure, RECORD_BUF};
use posthog_embedded::UnixMillis;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

use crate::embassy::{tcp, Tcp, M};

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

/// A leaf for `names`, as public CAs issue them (CA:FALSE, serverAuth).
fn leaf(
    names: &[&str],
    issuer: &CertifiedIssuer<'static, KeyPair>,
    expired: bool,
) -> (Vec<u8>, KeyPair) {
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.is_ca = IsCa::ExplicitNoCa;
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    if expired {
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.der().to_vec(), key)
}

/// What the TLS server saw.
#[derive(Default)]
struct Seen {
    connections: usize,
    handshake_errors: Vec<String>,
    /// Request line and body of each request.
    requests: Vec<(String, String)>,
}

/// A TLS 1.3 HTTP/1.1 server: answers every request 200, closing the connection after each
/// answer when `close` is set, and any connection idle for `idle`.
fn tls_server(chain: Vec<u8>, key: &KeyPair, close: bool) -> (u16, Arc<Mutex<Seen>>) {
    tls_server_idle(chain, key, close, std::time::Duration::from_secs(5))
}

fn tls_server_idle(
    chain: Vec<u8>,
    key: &KeyPair,
    close: bool,
    idle: std::time::Duration,
) -> (u16, Arc<Mutex<Seen>>) {
    #[allow(deprecated)] // the ring provider without post-quantum key exchange is what we want
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![chain.into()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let seen2 = Arc::clone(&seen);
    std::thread::spawn(move || {
        for tcp in listener.incoming().take(20) {
            let Ok(tcp) = tcp else { return };
            tcp.set_read_timeout(Some(idle)).unwrap();
            seen2.lock().unwrap().connections += 1;
            let conn = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            // Complete the handshake first, to record its failure apart from the requests.
            while tls.conn.is_handshaking() {
                if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
                    seen2.lock().unwrap().handshake_errors.push(e.to_string());
                    break;
                }
            }
            if tls.conn.is_handshaking() {
                continue;
            }
            let mut reader = BufReader::new(tls);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 {
                        break;
                    }
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(": ") {
                        if k.eq_ignore_ascii_case("content-length") {
                            len = v.parse().unwrap();
                        }
                    }
                }
                let mut body = vec![0u8; len];
                if reader.read_exact(&mut body).is_err() {
                    break;
                }
                seen2
                    .lock()
                    .unwrap()
                    .requests
                    .push((line.trim_end().to_owned(), String::from_utf8(body).unwrap()));
                let head = if close { "Connection: close\r\n" } else { "" };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\n{head}Content-Length: 16\r\n\r\n{{\"status\": \"Ok\"}}"
                );
                let tls = reader.get_mut();
                let _ = tls.write_all(resp.as_bytes());
                let _ = tls.flush();
                if close {
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                    break;
                }
            }
        }
    });
    (port, seen)
}

/// A client for `https://localhost:<port>`, split into handle and runner (leaked, as statics).
fn start(port: u16) -> (Posthog<'static, M>, Runner<'static, M>) {
    let resources = Box::leak(Box::new(Resources::<8192, 4, 64, 1024>::new()));
    let client = Client::new(Config::new("phc_tls_test", 0x71_5e), resources).unwrap();
    let state = Box::leak(Box::new(State::new()));
    let buffers = Buffers {
        tx: Box::leak(vec![0u8; 4096].into_boxed_slice()),
        rx: Box::leak(vec![0u8; 1024].into_boxed_slice()),
        body: Box::leak(vec![0u8; 512].into_boxed_slice()),
    };
    let host: &'static str = Box::leak(format!("localhost:{port}").into_boxed_str());
    embassy::new(client, state, buffers, host).unwrap()
}

/// A dialer over TCP to the server's port, trusting `root`.
fn dialer(port: u16, root: Vec<u8>) -> TlsDialer<'static, Tcp> {
    let root: &'static [u8] = Box::leak(root.into_boxed_slice());
    let roots: &'static [&'static [u8]] = Box::leak(Box::new([root]));
    let buffers = TlsBuffers {
        read: Box::leak(vec![0u8; RECORD_BUF].into_boxed_slice()),
        write: Box::leak(vec![0u8; 2048].into_boxed_slice()),
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    TlsDialer::with_seed(tcp(addr), buffers, roots, [7u8; 32]).unwrap()
}

/// Runs `fut` while the runner serves the client over sessions of `dialer`.
fn with_tls<T>(
    runner: &mut Runner<'static, M>,
    dialer: &mut TlsDialer<'static, Tcp>,
    fut: impl core::future::Future<Output = T>,
) -> T {
    embassy_futures::block_on(async {
        match select(fut, runner.run_dialed(dialer)).await {
            Either::First(t) => t,
            Either::Second(never) => never,
        }
    })
}

fn capture(ph: &Posthog<'static, M>, n: u32) {
    for i in 0..n {
        ph.capture("reading", "device-1", &EventOptions::new(), |p| {
            p.prop("i", i)?;
            Ok(())
        })
        .unwrap();
    }
}

fn deadline(ms: u64) -> embassy_time::Instant {
    embassy_time::Instant::now() + embassy_time::Duration::from_millis(ms)
}

#[test]
fn events_reach_the_server_over_verified_tls_session_after_session() {
    let ca = ca("test root");
    let (chain, key) = leaf(&["localhost"], &ca, false);
    // The server closes every connection after its answer: each batch needs a new session.
    let (port, seen) = tls_server(chain, &key, true);
    let (ph, mut runner) = start(port);
    let mut tls = dialer(port, ca.der().to_vec());
    ph.set_wall_clock(UnixMillis::from_millis(now_ms()));
    let (first, second) = with_tls(&mut runner, &mut tls, async {
        capture(&ph, 2);
        let first = ph.flush(deadline(10_000)).await;
        capture(&ph, 1);
        let second = ph.flush(deadline(10_000)).await;
        (first, second)
    });
    assert_eq!((first.sent, first.pending), (2, 0));
    assert_eq!((second.sent, second.pending), (1, 0));
    assert_eq!(tls.sessions(), 2);
    assert!(tls.last_failure().is_none());
    let seen = seen.lock().unwrap();
    assert!(
        seen.handshake_errors.is_empty(),
        "{:?}",
        seen.handshake_errors
    );
    assert_eq!(seen.requests.len(), 2);
    let events: usize = seen
        .requests
        .iter()
        .map(|(line, body)| {
            assert!(line.starts_with("POST /batch/"), "{line}");
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            v["batch"].as_array().unwrap().len()
        })
        .sum();
    assert_eq!(events, 3);
    assert_eq!(ph.stats().sent, 3);
}

/// Dials `port` trusting `root` with one event queued: what the dialer reported and what is
/// still queued.
fn refused(port: u16, root: Vec<u8>) -> (Option<TlsFailure>, usize) {
    let (ph, mut runner) = start(port);
    let mut tls = dialer(port, root);
    ph.set_wall_clock(UnixMillis::from_millis(now_ms()));
    let drained = with_tls(&mut runner, &mut tls, async {
        capture(&ph, 1);
        ph.flush(deadline(700)).await
    });
    assert_eq!(drained.sent, 0);
    assert_eq!(tls.sessions(), 0);
    let stats = ph.stats();
    assert_eq!(stats.sent, 0);
    assert_eq!(
        stats.queue.dropped(),
        0,
        "an outage is not a reason to drop"
    );
    assert_eq!(
        stats.last_error,
        Some(posthog_embedded::client::DeliveryError::Transport(
            TransportError::Tls
        ))
    );
    (tls.last_failure(), drained.pending)
}

#[test]
fn a_wrong_ca_an_expired_certificate_or_a_wrong_name_sends_nothing_and_keeps_the_events() {
    let trusted = ca("test root");
    let rogue = ca("rogue root");
    let cases = [
        // Signed by another CA than the one the device trusts.
        (
            "wrong CA",
            leaf(&["localhost"], &rogue, false),
            CertError::UnknownIssuer,
        ),
        (
            "expired",
            leaf(&["localhost"], &trusted, true),
            CertError::Expired,
        ),
        (
            "wrong host",
            leaf(&["other.example"], &trusted, false),
            CertError::NameMismatch,
        ),
    ];
    for (what, (chain, key), want) in cases {
        let (port, seen) = tls_server(chain, &key, false);
        let (failure, pending) = refused(port, trusted.der().to_vec());
        assert!(
            matches!(failure, Some(TlsFailure::Certificate(e)) if e == want),
            "{what}: {failure:?}"
        );
        assert_eq!(pending, 1, "{what}: the event stays queued");
        let seen = seen.lock().unwrap();
        assert!(seen.requests.is_empty(), "{what}: nothing sent");
        assert!(
            !seen.handshake_errors.is_empty(),
            "{what}: no handshake completed"
        );
    }
}

#[test]
fn without_a_wall_clock_nothing_is_dialed_until_it_is_set() {
    let ca = ca("test root");
    let (chain, key) = leaf(&["localhost"], &ca, false);
    let (port, seen) = tls_server(chain, &key, false);
    let (ph, mut runner) = start(port);
    let mut tls = dialer(port, ca.der().to_vec());
    let (waiting, delivered) = with_tls(&mut runner, &mut tls, async {
        capture(&ph, 1);
        let waiting = ph.flush(deadline(500)).await;
        let stats = ph.stats();
        // No clock: not dialed, and no delivery attempt counted as failed.
        assert_eq!((stats.retries, stats.last_error), (0, None));
        assert_eq!(seen.lock().unwrap().connections, 0);
        // The clock arrives (SNTP, GNSS): the runner dials and delivers.
        ph.set_wall_clock(UnixMillis::from_millis(now_ms()));
        (waiting, ph.flush(deadline(10_000)).await)
    });
    assert_eq!((waiting.sent, waiting.pending), (0, 1));
    assert_eq!((delivered.sent, delivered.pending), (1, 0));
    assert_eq!(tls.sessions(), 1);
    assert_eq!(ph.stats().retries, 0);
}

#[test]
fn an_idle_session_is_closed_before_the_server_drops_it() {
    let ca = ca("test root");
    let (chain, key) = leaf(&["localhost"], &ca, false);
    // Keep-alive, but the server drops connections idle for 400 ms (silently, as servers do).
    let (port, seen) = tls_server_idle(chain, &key, false, std::time::Duration::from_millis(400));
    let (ph, mut runner) = start(port);
    runner
        .set_timeouts(
            embassy::Timeouts::new().session_idle(embassy_time::Duration::from_millis(100)),
        )
        .unwrap();
    let mut tls = dialer(port, ca.der().to_vec());
    ph.set_wall_clock(UnixMillis::from_millis(now_ms()));
    let (first, second) = with_tls(&mut runner, &mut tls, async {
        capture(&ph, 1);
        let first = ph.flush(deadline(10_000)).await;
        // Longer than the server's idle limit: its end of the first session is gone.
        embassy_time::Timer::after(embassy_time::Duration::from_millis(800)).await;
        capture(&ph, 1);
        let second = ph.flush(deadline(10_000)).await;
        (first, second)
    });
    assert_eq!((first.sent, second.sent, second.pending), (1, 1, 0));
    // The runner closed the idle session and dialed a fresh one: no attempt failed.
    assert_eq!(tls.sessions(), 2);
    assert_eq!(ph.stats().retries, 0);
    assert!(ph.stats().last_error.is_none());
    assert_eq!(seen.lock().unwrap().requests.len(), 2);
}
