//! The embassy driver on a host: the `Runner` over a real loopback TCP connection (a blocking
//! `std` socket behind `embedded-io-async`), embassy-time's std driver, and a scripted HTTP/1.1
//! server in a thread. Keep-alive, `Connection: close`, a connection the server dropped while
//! idle, retries after 503, and definitions polling with the secret key.
#![cfg(feature = "embassy")]

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use posthog_embedded::adapters::embassy::{self, Buffers, Connect, Link, Posthog, Runner, State};
use posthog_embedded::capture::EventOptions;
use posthog_embedded::client::{Client, Config};
use posthog_embedded::flags::remote::{RemoteFlags, RemoteStorage};
use posthog_embedded::resources::Resources;
use posthog_embedded::Duration;

use crate::config_cases;

/// A blocking TCP stream as an `embedded-io-async` stream (fine on a test thread: the server
/// always answers).
pub(crate) struct Tcp {
    addr: std::net::SocketAddr,
    stream: Option<TcpStream>,
    connects: Arc<Mutex<usize>>,
}

use embedded_io_async::ErrorKind;

fn kind(e: std::io::Error) -> ErrorKind {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => ErrorKind::ConnectionRefused,
        std::io::ErrorKind::ConnectionReset => ErrorKind::ConnectionReset,
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => ErrorKind::TimedOut,
        _ => ErrorKind::Other,
    }
}

impl embedded_io_async::ErrorType for Tcp {
    type Error = ErrorKind;
}

impl embedded_io_async::Read for Tcp {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        match &mut self.stream {
            Some(s) => s.read(buf).map_err(kind),
            None => Err(ErrorKind::NotConnected),
        }
    }
}

impl embedded_io_async::Write for Tcp {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        match &mut self.stream {
            Some(s) => s.write(buf).map_err(kind),
            None => Err(ErrorKind::NotConnected),
        }
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        match &mut self.stream {
            Some(s) => s.flush().map_err(kind),
            None => Err(ErrorKind::NotConnected),
        }
    }
}

impl Connect for Tcp {
    async fn connect(&mut self) -> Result<(), ErrorKind> {
        let s = TcpStream::connect(self.addr).map_err(kind)?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .map_err(kind)?;
        self.stream = Some(s);
        *self.connects.lock().unwrap() += 1;
        Ok(())
    }

    async fn disconnect(&mut self) {
        self.stream = None;
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Reply {
    Ok,
    OkClose,
    Status503,
    /// Close the connection without answering (as an idle keep-alive timeout would).
    Drop,
    Definitions,
    Status502,
    Flags,
    Status304,
    /// `200` with a definitions body that is not a whole document.
    DefinitionsBroken,
    /// `200` with other definitions (flag `gamma`).
    DefinitionsGamma,
}

/// Request line, headers, body.
pub(crate) type Request = (String, Vec<(String, String)>, String);

#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) requests: Vec<Request>,
}

/// A server answering requests with `script` in order (then `Ok`), over keep-alive connections.
pub(crate) fn server(script: Vec<Reply>) -> (std::net::SocketAddr, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let seen2 = seen.clone();
    thread::spawn(move || {
        let mut script = script.into_iter();
        for conn in listener.incoming().take(20) {
            let Ok(conn) = conn else { return };
            conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut out = conn;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let request_line = line.trim_end().to_owned();
                let mut headers = Vec::new();
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(": ").unwrap();
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.parse().unwrap();
                    }
                    headers.push((k.to_owned(), v.to_owned()));
                }
                let mut body = vec![0u8; len];
                reader.read_exact(&mut body).unwrap();
                seen2.lock().unwrap().requests.push((
                    request_line,
                    headers,
                    String::from_utf8(body).unwrap(),
                ));
                let reply = script.next().unwrap_or(Reply::Ok);
                let resp: Vec<u8> = match reply {
                    Reply::Ok => {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n{\"status\": \"Ok\"}"[..]
                            .into()
                    }
                    Reply::OkClose => {
                        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"[..]
                            .into()
                    }
                    Reply::Status502 => {
                        b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"[..].into()
                    }
                    Reply::Flags => {
                        let flags = br#"{"flags":{"remote-only":{"key":"remote-only","enabled":true,"variant":"blue","metadata":{"id":5}}}}"#;
                        let mut r =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", flags.len())
                                .into_bytes();
                        r.extend_from_slice(flags);
                        r
                    }
                    Reply::Status304 => {
                        b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 0\r\n\r\n"[..]
                            .into()
                    }
                    Reply::Status503 => {
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"[..].into()
                    }
                    Reply::Drop => break,
                    Reply::DefinitionsBroken => {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"flags\": ["[..]
                            .into()
                    }
                    Reply::DefinitionsGamma => {
                        let defs = br#"{"flags":[{"id":3,"key":"gamma","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}}]}"#;
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                            defs.len()
                        )
                        .into_bytes();
                        r.extend_from_slice(defs);
                        r
                    }
                    Reply::Definitions => {
                        let defs = br#"{"flags":[{"id":1,"key":"beta","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}}]}"#;
                        let mut r = format!("HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n", defs.len()).into_bytes();
                        r.extend_from_slice(defs);
                        r.extend_from_slice(b"\r\n0\r\n\r\n");
                        r
                    }
                };
                // The answer to a request the server "stored" is sent even if we then close.
                out.write_all(&resp).unwrap();
                if reply == Reply::OkClose {
                    break;
                }
            }
        }
    });
    (addr, seen)
}

pub(crate) type M = CriticalSectionRawMutex;

/// A client with `config` split into its handle and runner, everything leaked (`'static`, as
/// in a firmware's statics): 4 KiB of requests, 1 KiB of heads, `body` bytes of kept bodies.
fn start(config: Config<'static>, body: usize) -> (Posthog<'static, M>, Runner<'static, M>) {
    let resources = Box::leak(Box::new(Resources::<4096, 4, 64, 1024>::new()));
    let mut client = Client::new(config, resources).expect("valid configuration");
    // Storage for `/flags` queries (request body, then the answer).
    let remote = Box::leak(Box::new(RemoteStorage::<8, 2048>::new()));
    client.attach_remote(RemoteFlags::new(remote));
    let state = Box::leak(Box::new(State::new()));
    let buffers = Buffers {
        tx: Box::leak(vec![0u8; 4096].into_boxed_slice()),
        rx: Box::leak(vec![0u8; 1024].into_boxed_slice()),
        body: Box::leak(vec![0u8; body].into_boxed_slice()),
    };
    embassy::new(client, state, buffers, "127.0.0.1").expect("a host")
}

/// Runs `fut` to completion while the runner serves the client over `conn` (as the runner task
/// would on a device).
fn with_runner<T>(
    runner: &mut Runner<'static, M>,
    conn: Tcp,
    fut: impl core::future::Future<Output = T>,
) -> T {
    use embassy_futures::select::{select, Either};
    let mut link = runner.link(conn);
    embassy_futures::block_on(async {
        match select(fut, async {
            loop {
                link.step().await;
            }
        })
        .await
        {
            Either::First(t) => t,
            Either::Second(never) => never,
        }
    })
}

pub(crate) fn tcp(addr: std::net::SocketAddr) -> Tcp {
    Tcp {
        addr,
        stream: None,
        connects: Arc::new(Mutex::new(0)),
    }
}

/// Drives the link until `done` or a bound on steps, each step bounded by 100 ms.
fn drive<C: Connect>(link: &mut Link<'_, '_, M, C>, done: impl Fn() -> bool) {
    drive_steps(link, embassy_time::Duration::from_millis(100), done);
}

/// [`drive`] with each step bounded by `step` (longer than any connect, which a step that is
/// cut short would restart).
fn drive_steps<C: Connect>(
    link: &mut Link<'_, '_, M, C>,
    step: embassy_time::Duration,
    done: impl Fn() -> bool,
) {
    for _ in 0..200 {
        if done() {
            return;
        }
        embassy_futures::block_on(embassy_time::with_timeout(step, link.step())).ok();
    }
    panic!("runner did not finish");
}

#[test]
fn delivers_over_keep_alive_and_reconnects_when_told_or_dropped() {
    let (addr, seen) = server(vec![Reply::Ok, Reply::OkClose, Reply::Ok, Reply::Drop]);
    let (ph, mut runner) = start(Config::new("phc_embassy", 0x5eed).flush_at(100), 2048);
    let connects = Arc::new(Mutex::new(0));
    let conn = Tcp {
        addr,
        stream: None,
        connects: connects.clone(),
    };
    let mut runner = runner.link(conn);
    for round in 0..5 {
        ph.capture("reading", "device-1", &EventOptions::new(), |p| {
            p.prop("round", round)?;
            Ok(())
        })
        .unwrap();
        ph.request_flush();
        drive(&mut runner, || ph.pending() == 0);
    }
    let seen = seen.lock().unwrap();
    // Five deliveries. Requests 1-2 on connection 1 (the second answer says close), 3-4 on
    // connection 2 (the server drops it after request 4 without answering: that request is
    // sent again on connection 3), 5 on connection 3.
    assert_eq!(seen.requests.len(), 6);
    assert_eq!(*connects.lock().unwrap(), 3);
    for (line, headers, body) in &seen.requests {
        assert_eq!(line, "POST /batch/ HTTP/1.1");
        assert!(headers.contains(&("Host".into(), "127.0.0.1".into())));
        assert!(headers.contains(&("Connection".into(), "keep-alive".into())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["api_key"], "phc_embassy");
    }
    assert_eq!(ph.stats().sent, 5);
}

#[test]
fn retries_after_503_and_polls_definitions_with_the_secret() {
    let (addr, seen) = server(vec![Reply::Definitions, Reply::Status503, Reply::Ok]);
    let (ph, mut runner) = start(
        Config::new("phc_embassy", 0x5eed)
            .secret_key("phx_embassy_secret")
            .flush_at(1)
            .retry(Duration::from_millis(50), Duration::from_millis(100)),
        4096,
    );
    let connects = Arc::new(Mutex::new(0));
    let conn = Tcp {
        addr,
        stream: None,
        connects,
    };
    let mut runner = runner.link(conn);
    drive(&mut runner, || {
        ph.with(|c, _| c.is_local_evaluation_ready())
    });
    ph.capture("e", "device-1", &EventOptions::new(), |_| Ok(()))
        .unwrap();
    drive(&mut runner, || ph.pending() == 0);
    let s = ph.stats();
    assert_eq!((s.sent, s.retries), (1, 1));
    let seen = seen.lock().unwrap();
    let (line, headers, _) = &seen.requests[0];
    assert_eq!(
        line,
        "GET /flags/definitions?token=phc_embassy&send_cohorts HTTP/1.1"
    );
    assert!(headers.contains(&("Authorization".into(), "Bearer phx_embassy_secret".into())));
    assert_eq!(seen.requests.len(), 3);
}

#[test]
fn capture_immediate_waits_for_the_answer() {
    use posthog_embedded::client::Fate;
    let (addr, _seen) = server(vec![Reply::Ok]);
    let (ph, mut runner) = start(Config::new("phc_embassy", 0x5eed).flush_at(100), 2048);
    let connects = Arc::new(Mutex::new(0));
    let conn = Tcp {
        addr,
        stream: None,
        connects,
    };
    let mut runner = runner.link(conn);
    let opts = EventOptions::new();
    let fate = embassy_futures::block_on(async {
        let send = ph.capture_immediate(
            "door opened",
            "device-1",
            &opts,
            |_| Ok(()),
            embassy_time::Duration::from_secs(5),
        );
        // The runner serves the request while the immediate send waits.
        match embassy_futures::select::select(send, async {
            loop {
                runner.step().await;
            }
        })
        .await
        {
            embassy_futures::select::Either::First(f) => f,
            embassy_futures::select::Either::Second(()) => unreachable!(),
        }
    });
    assert_eq!(fate, Ok(Fate::Delivered));
    assert_eq!(ph.pending(), 0);
}

/// `flush` and `shutdown` wait for the runner without polling, several tasks at
/// once, and return what was delivered and what is left.
#[test]
fn flush_and_shutdown_wait_for_delivery_with_a_deadline() {
    use embassy_futures::join::join3;
    use embassy_futures::select::{select, Either};
    use posthog_embedded::client::Fate;

    let (addr, seen) = server(vec![Reply::Ok, Reply::Ok]);
    let (ph, mut runner) = start(Config::new("phc_embassy", 0x5eed).flush_at(100), 2048);
    let conn = Tcp {
        addr,
        stream: None,
        connects: Arc::new(Mutex::new(0)),
    };
    let mut first = runner.link(conn);
    for i in 0..3 {
        ph.capture("reading", "device-1", &EventOptions::new(), |p| {
            p.prop("i", i)?;
            Ok(())
        })
        .unwrap();
    }
    let opts = EventOptions::new();
    let deadline = embassy_time::Instant::now() + embassy_time::Duration::from_secs(10);
    // Two flushes and an immediate send wait at the same time while the runner works.
    let waits = join3(
        ph.flush(deadline),
        ph.flush(deadline),
        ph.capture_immediate(
            "door opened",
            "device-1",
            &opts,
            |_| Ok(()),
            embassy_time::Duration::from_secs(10),
        ),
    );
    let (a, b, fate) = embassy_futures::block_on(async {
        match select(waits, async {
            loop {
                first.step().await;
            }
        })
        .await
        {
            Either::First(r) => r,
            Either::Second(()) => unreachable!(),
        }
    });
    assert_eq!(fate, Ok(Fate::Delivered));
    assert_eq!(a.pending, 0);
    assert_eq!(b.pending, 0);
    assert_eq!(a.sent, 4);
    assert_eq!(ph.stats().sent, 4);
    assert!(!seen.lock().unwrap().requests.is_empty());

    // Nothing queued: returns at once.
    let none = embassy_futures::block_on(ph.flush(embassy_time::Instant::MAX));
    assert_eq!((none.sent, none.pending), (0, 0));

    // Shutdown against a server that is gone: returns at its deadline with the event kept.
    ph.capture("last", "device-1", &EventOptions::new(), |_| Ok(()))
        .unwrap();
    drop(first);
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    // The same runner over a new connection (a network switch).
    let mut second = runner.link(Tcp {
        addr: dead_addr,
        stream: None,
        connects: Arc::new(Mutex::new(0)),
    });
    let started = embassy_time::Instant::now();
    let wait = embassy_time::Duration::from_millis(300);
    let r = embassy_futures::block_on(async {
        match select(ph.shutdown(started + wait), async {
            loop {
                second.step().await;
            }
        })
        .await
        {
            Either::First(r) => r,
            Either::Second(()) => unreachable!(),
        }
    });
    assert_eq!((r.sent, r.pending), (0, 1));
    assert!(embassy_time::Instant::now() >= started + wait);
}

/// A remote read waiting out its retry delay sends no retry once the client is shut down.
#[test]
fn no_flags_retry_after_shutdown() {
    use embassy_futures::join::join;
    use posthog_embedded::adapters::embassy::FlagRead;
    use posthog_embedded::flags::{EvalContext, FlagValue};

    let (addr, seen) = server(vec![Reply::Status502, Reply::Flags]);
    let (ph, mut runner) = start(Config::new("phc_embassy", 0x5eed).flush_at(100), 2048);
    let ctx = EvalContext {
        distinct_id: "device-1",
        device_id: None,
        person: &[],
        groups: &[],
    };
    let (v, ()) = with_runner(
        &mut runner,
        tcp(addr),
        join(
            ph.get_feature_flag("remote-only", &ctx, FlagRead::new()),
            async {
                // Once the first attempt got its 502, shut down during the 300 ms retry delay.
                while seen.lock().unwrap().requests.is_empty() {
                    embassy_time::Timer::after_millis(5).await;
                }
                ph.begin_shutdown();
            },
        ),
    );
    assert_eq!(v, None::<FlagValue>);
    assert_eq!(
        seen.lock().unwrap().requests.len(),
        1,
        "no retry after shutdown"
    );
}

#[test]
fn flags_local_first_then_remote_over_the_runners_connection() {
    use posthog_embedded::adapters::embassy::FlagRead;
    use posthog_embedded::flags::{EvalContext, FlagValue, PropertyValue};

    let (addr, seen) = server(vec![Reply::Status502, Reply::Flags]);
    let (ph, mut runner) = start(Config::new("phc_embassy", 0x5eed).flush_at(100), 2048);
    ph.load_definitions(
        br#"{"flags":[{"id":1,"key":"local","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}},
            {"id":5,"key":"remote-only","active":true,"ensure_experience_continuity":true,"filters":{"groups":[]}}]}"#,
    )
    .unwrap();
    let connects = Arc::new(Mutex::new(0));
    let conn = Tcp {
        addr,
        stream: None,
        connects: Arc::clone(&connects),
    };
    let person = [("plan", PropertyValue::Str("pro"))];
    let ctx = EvalContext {
        distinct_id: "device-1",
        device_id: None,
        person: &person,
        groups: &[],
    };

    let (local, remote, only_local) = with_runner(&mut runner, conn, async {
        let local: Option<FlagValue> = ph.get_feature_flag("local", &ctx, FlagRead::new()).await;
        assert!(
            seen.lock().unwrap().requests.is_empty(),
            "a local answer asks nobody"
        );
        let t = std::time::Instant::now();
        let remote: Option<FlagValue> = ph
            .get_feature_flag("remote-only", &ctx, FlagRead::new())
            .await;
        assert!(
            t.elapsed() >= std::time::Duration::from_millis(300),
            "502 retried after 300 ms"
        );
        let only_local: Option<FlagValue> = ph
            .get_feature_flag("remote-only", &ctx, FlagRead::new().only_local(true))
            .await;
        (local, remote, only_local)
    });
    assert_eq!(local, Some(FlagValue::Bool(true)));
    assert_eq!(remote, Some(FlagValue::variant("blue").unwrap()));
    assert_eq!(only_local, None);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.requests.len(), 2, "only_local asks nobody");
    let (line, _, body) = &seen.requests[1];
    assert_eq!(line, "POST /flags/?v=2 HTTP/1.1");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        body["flag_keys_to_evaluate"],
        serde_json::json!(["remote-only"])
    );
    assert_eq!(
        body["person_properties"],
        serde_json::json!({"plan": "pro"})
    );
    // Over the runner's one kept-alive connection: no second connection.
    assert_eq!(*connects.lock().unwrap(), 1);
    // Every read queued its $feature_flag_called event.
    assert_eq!(ph.pending(), 3);
}

/// A stream that takes `delay` to connect (a TLS handshake, a modem dialling).
struct SlowConnect {
    inner: Tcp,
    delay: embassy_time::Duration,
}

impl embedded_io_async::ErrorType for SlowConnect {
    type Error = ErrorKind;
}

impl embedded_io_async::Read for SlowConnect {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        self.inner.read(buf).await
    }
}

impl embedded_io_async::Write for SlowConnect {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.inner.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        self.inner.flush().await
    }
}

impl Connect for SlowConnect {
    async fn connect(&mut self) -> Result<(), ErrorKind> {
        embassy_time::Timer::after(self.delay).await;
        self.inner.connect().await
    }

    async fn disconnect(&mut self) {
        self.inner.disconnect().await;
    }
}

/// The runner connects before it asks the client for the request, so the time spent
/// connecting is inside the events' `offset` (rendered with the request) and the server places
/// each event at its capture time, not at capture time plus the handshake.
#[test]
fn connection_time_is_counted_in_the_offset() {
    let (addr, seen) = server(vec![Reply::Ok]);
    let (ph, mut runner) = start(Config::new("phc_embassy", 0x5eed).flush_at(100), 2048);
    let conn = SlowConnect {
        inner: Tcp {
            addr,
            stream: None,
            connects: Arc::new(Mutex::new(0)),
        },
        delay: embassy_time::Duration::from_millis(400),
    };
    let mut runner = runner.link(conn);
    ph.capture("boot", "device-1", &EventOptions::new(), |_| Ok(()))
        .unwrap();
    ph.request_flush();
    drive_steps(&mut runner, embassy_time::Duration::from_secs(3), || {
        ph.pending() == 0
    });
    let seen = seen.lock().unwrap();
    let v: serde_json::Value = serde_json::from_str(&seen.requests[0].2).unwrap();
    let offset = v["batch"][0]["offset"].as_u64().unwrap();
    assert!(
        offset >= 400,
        "the 400 ms connect is not in the offset: {offset}"
    );
}

/// Every constructor of the embassy path checks its settings: `Client::new` the client's
/// configuration, `embassy::new` a blank host, `Runner::set_timeouts` a zero timeout. The
/// errors name the setting, never the key. (A second runner cannot exist: `embassy::new`
/// returns the only one.)
#[test]
fn constructors_reject_bad_configuration() {
    use posthog_embedded::adapters::embassy::Timeouts;
    use posthog_embedded::client::{ConfigError, Setting};

    // Every rule of the core, through the constructor the embassy path uses.
    let rejected = config_cases::rejected();
    for (config, want) in rejected {
        let mut resources = Box::new(Resources::<1024, 1, 4, 64, 4>::new());
        assert_eq!(Client::new(config, &mut resources).err(), Some(want));
        assert!(!want.to_string().contains("phc_ok"));
    }

    let mut resources = Box::new(Resources::<1024, 1, 4, 64, 4>::new());
    let client = Client::new(Config::new("phc_embassy", 1), &mut resources).unwrap();
    let mut state = State::<M>::new();
    let mut bufs: Bufs = (vec![0; 1024], vec![0; 1024], vec![0; 256]);
    assert_eq!(
        embassy::new(client, &mut state, buffers(&mut bufs), " ").err(),
        Some(ConfigError::EmptyHost)
    );
    let (_ph, mut runner) = start(Config::new("phc_embassy", 1), 256);
    assert_eq!(
        runner.set_timeouts(Timeouts::new().request(embassy_time::Duration::from_ticks(0))),
        Err(ConfigError::Zero {
            setting: Setting::RequestTimeout
        })
    );
    assert_eq!(
        runner.set_timeouts(Timeouts::new().request(embassy_time::Duration::from_secs(2))),
        Ok(())
    );
}

/// The buffers of a test runner: request bodies, heads, kept response bodies.
type Bufs = (Vec<u8>, Vec<u8>, Vec<u8>);

fn buffers(b: &mut Bufs) -> Buffers<'_> {
    Buffers {
        tx: &mut b.0,
        rx: &mut b.1,
        body: &mut b.2,
    }
}

/// An empty or whitespace distinct id reads no flag, asks nobody and queues no event; offline
/// or after shutdown, no `/flags` request is sent either.
#[test]
fn flag_reads_without_an_id_or_after_shutdown_send_nothing() {
    use posthog_embedded::adapters::embassy::FlagRead;
    use posthog_embedded::flags::{EvalContext, FlagValue, PropertyValue};

    let (addr, seen) = server(vec![Reply::Flags, Reply::Flags]);
    let (ph, _runner) = start(Config::new("phc_embassy", 0x5eed).flush_at(100), 2048);
    ph.with(|c, _| {
        c.load_definitions(
            br#"{"flags":[{"id":1,"key":"local","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}},
                {"id":5,"key":"remote-only","active":true,"ensure_experience_continuity":true,"filters":{"groups":[]}}]}"#,
        )
        .unwrap();
    });
    // The runner is not even running: none of these reads may wait for it.
    let _ = addr;
    let person: [(&str, PropertyValue<'_>); 0] = [];
    let read = |id: &str, key: &str, opts: FlagRead| -> Option<FlagValue> {
        let ctx = EvalContext {
            distinct_id: id,
            device_id: None,
            person: &person,
            groups: &[],
        };
        embassy_futures::block_on(ph.get_feature_flag(key, &ctx, opts))
    };
    for id in ["", " ", "\t"] {
        for key in ["local", "remote-only"] {
            assert_eq!(read(id, key, FlagRead::new()), None);
            assert_eq!(read(id, key, FlagRead::new().force_remote(true)), None);
            assert_eq!(read(id, key, FlagRead::new().only_local(true)), None);
        }
    }
    assert!(seen.lock().unwrap().requests.is_empty(), "nobody asked");
    assert_eq!(ph.pending(), 0, "no $feature_flag_called");
    assert_eq!(ph.stats().invalid, 0);
    // Offline: a local value answers; a remote read asks nobody, reported as a connection
    // error.
    ph.set_online(false);
    assert_eq!(
        read("device-1", "local", FlagRead::new()),
        Some(FlagValue::Bool(true))
    );
    assert_eq!(read("device-1", "remote-only", FlagRead::new()), None);
    assert!(
        seen.lock().unwrap().requests.is_empty(),
        "no /flags while offline"
    );
    assert_eq!(ph.pending(), 2, "both reads reported");
    ph.set_online(true);
    ph.begin_shutdown();
    // Local values still answer; nothing goes to /flags.
    assert_eq!(
        read("device-1", "local", FlagRead::new()),
        Some(FlagValue::Bool(true))
    );
    assert_eq!(read("device-1", "remote-only", FlagRead::new()), None);
    assert_eq!(
        read("device-1", "local", FlagRead::new().force_remote(true)),
        None
    );
    assert!(
        seen.lock().unwrap().requests.is_empty(),
        "no /flags after shutdown"
    );
}

/// The connectivity hint through the handle: offline, the runner opens no connection; back
/// online, the queued event goes out at once.
#[test]
fn offline_opens_no_connection_and_online_sends_at_once() {
    let (addr, seen) = server(vec![Reply::Ok]);
    let (ph, mut runner) = start(Config::new("phc_embassy", 0x5eed).flush_at(1), 256);
    let connects = Arc::new(Mutex::new(0));
    let mut runner = runner.link(Tcp {
        addr,
        stream: None,
        connects: Arc::clone(&connects),
    });
    ph.set_online(false);
    ph.capture("offline", "device-1", &EventOptions::new(), |_| Ok(()))
        .unwrap();
    // A few steps: each finds nothing to send (the runner sleeps until woken).
    for _ in 0..3 {
        let _ = embassy_futures::block_on(embassy_time::with_timeout(
            embassy_time::Duration::from_millis(50),
            runner.step(),
        ));
    }
    assert_eq!(*connects.lock().unwrap(), 0);
    assert_eq!(ph.pending(), 1);
    ph.set_online(true);
    drive(&mut runner, || ph.pending() == 0);
    assert_eq!(*connects.lock().unwrap(), 1);
    assert_eq!(seen.lock().unwrap().requests.len(), 1);
}

/// PostHog's `get_feature_flag_result` through the handle (local, then remote), the caller's
/// default of `is_feature_enabled`, and the local bulk read.
#[test]
fn flag_results_defaults_and_bulk_reads_through_the_handle() {
    use posthog_embedded::adapters::embassy::FlagRead;
    use posthog_embedded::flags::{EvalContext, FlagValue};

    let (addr, seen) = server(vec![Reply::Flags]);
    let (ph, mut runner) = start(Config::new("phc_embassy", 0x5eed).flush_at(100), 2048);
    ph.load_definitions(
        br#"{"flags":[{"id":1,"key":"local","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}],"payloads":{"true":"{\"n\":1}"}}},
            {"id":2,"key":"off","active":false,"filters":{"groups":[]}},
            {"id":5,"key":"remote-only","active":true,"ensure_experience_continuity":true,"filters":{"groups":[]}}]}"#,
    )
    .unwrap();
    let ctx = EvalContext {
        distinct_id: "device-1",
        device_id: None,
        person: &[],
        groups: &[],
    };
    let mut read = |key: &str| {
        with_runner(
            &mut runner,
            tcp(addr),
            ph.get_feature_flag_result(key, &ctx, FlagRead::new(), |r| {
                r.map(|r| {
                    (
                        r.key.to_owned(),
                        r.enabled,
                        r.variant().map(str::to_owned),
                        r.payload.map(str::to_owned),
                    )
                })
            }),
        )
    };
    assert_eq!(
        read("local"),
        Some(("local".into(), true, None, Some(r#"{"n":1}"#.into())))
    );
    assert_eq!(read("off"), Some(("off".into(), false, None, None)));
    assert!(
        seen.lock().unwrap().requests.is_empty(),
        "local answers ask nobody"
    );
    assert_eq!(
        read("remote-only"),
        Some(("remote-only".into(), true, Some("blue".into()), None))
    );
    assert_eq!(seen.lock().unwrap().requests.len(), 1);
    assert_eq!(ph.pending(), 3, "each read queued its $feature_flag_called");

    // The default applies only to a flag without a value.
    assert!(!ph.is_feature_enabled_locally("off", &ctx, true));
    assert!(ph.is_feature_enabled_locally("missing", &ctx, true));
    assert!(!ph.is_feature_enabled_locally("missing", &ctx, false));
    // Payload of a given value, without evaluating.
    assert_eq!(
        ph.feature_flag_payload("local", &ctx, Some(FlagValue::Bool(true)), |p| p
            .map(str::to_owned)),
        Ok(Some(r#"{"n":1}"#.to_owned()))
    );

    // Local bulk read: no events, and `incomplete` because remote-only needs the server.
    let before = ph.pending();
    let mut keys = Vec::new();
    let found = ph.all_flags(&ctx, None, |r| keys.push(r.key.to_owned()));
    assert_eq!(keys, ["local", "off"]);
    assert_eq!(found.decided, 2);
    assert!(found.incomplete);
    let found = ph.all_flags(&ctx, Some(&["local"]), |_| {});
    assert!(!found.incomplete);
    assert_eq!(ph.pending(), before, "bulk reads send no event");
}

/// PostHog's `evaluate_flags` through the handle: one request over the runner's connection,
/// local values kept, exposure only on reads, capture with the snapshot.
#[test]
fn evaluate_flags_snapshot_through_the_handle() {
    use posthog_embedded::adapters::embassy::FlagRead;
    use posthog_embedded::client::{FlagSnapshot, SnapshotStorage};
    use posthog_embedded::flags::{EvalContext, FlagValue};

    let (addr, seen) = server(vec![Reply::Flags]);
    let (ph, mut runner) = start(Config::new("phc_embassy", 0x5eed).flush_at(100), 2048);
    ph.load_definitions(
        br#"{"flags":[{"id":1,"key":"local","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}},
            {"id":5,"key":"remote-only","active":true,"ensure_experience_continuity":true,"filters":{"groups":[]}}]}"#,
    )
    .unwrap();
    let ctx = EvalContext {
        distinct_id: "device-1",
        device_id: None,
        person: &[],
        groups: &[],
    };
    let mut storage = SnapshotStorage::<8, 512>::new();
    let mut snap = FlagSnapshot::new(&mut storage);
    with_runner(
        &mut runner,
        tcp(addr),
        ph.evaluate_flags(&ctx, None, FlagRead::new(), &mut snap),
    )
    .unwrap();
    assert_eq!(seen.lock().unwrap().requests.len(), 1);
    assert_eq!(ph.pending(), 0, "no exposure at evaluation");
    let mut keys: Vec<&str> = snap.keys().collect();
    keys.sort_unstable();
    assert_eq!(keys, ["local", "remote-only"]);
    assert!(snap.get("local").unwrap().locally_evaluated);
    assert!(ph.snapshot_enabled(&mut snap, "local", false));
    assert_eq!(
        ph.snapshot_flag(&mut snap, "remote-only"),
        Some(FlagValue::variant("blue").unwrap())
    );
    assert!(ph.snapshot_enabled(&mut snap, "local", false));
    assert_eq!(ph.pending(), 2, "one exposure per flag");
    ph.capture_with_snapshot("e", "device-1", &EventOptions::new(), &snap, |_| Ok(()))
        .unwrap();
    assert_eq!(seen.lock().unwrap().requests.len(), 1, "no second request");
}

/// The handle's full-resolution reads: `is_feature_enabled` with its default, payloads without
/// events, and the bulk read merging one `/flags` answer, all over the runner's connection.
#[test]
fn remote_enabled_payload_and_bulk_reads_through_the_handle() {
    use posthog_embedded::adapters::embassy::FlagRead;
    use posthog_embedded::flags::EvalContext;

    let (addr, seen) = server(vec![Reply::Flags, Reply::Flags, Reply::Flags]);
    let (ph, mut runner) = start(Config::new("phc_embassy", 0x5eed).flush_at(100), 2048);
    ph.load_definitions(
        br#"{"flags":[{"id":1,"key":"local","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}},
            {"id":5,"key":"remote-only","active":true,"ensure_experience_continuity":true,"filters":{"groups":[]}}]}"#,
    )
    .unwrap();
    let ctx = EvalContext {
        distinct_id: "device-1",
        device_id: None,
        person: &[],
        groups: &[],
    };
    let (all, enabled, missing, payload) = with_runner(&mut runner, tcp(addr), async {
        let mut all = Vec::new();
        let n = ph
            .get_all_flags(&ctx, None, FlagRead::new(), |r| {
                all.push((r.key.to_owned(), r.variant().map(str::to_owned)));
            })
            .await;
        assert_eq!(n, all.len());
        let enabled = ph
            .is_feature_enabled("remote-only", &ctx, false, FlagRead::new())
            .await;
        let missing = ph
            .is_feature_enabled("nowhere", &ctx, true, FlagRead::new())
            .await;
        let payload = ph
            .get_feature_flag_payload("local", &ctx, FlagRead::new(), |p| p.map(str::to_owned))
            .await;
        (all, enabled, missing, payload)
    });
    // The server's answer replaces the local values (posthog-python's merge).
    assert_eq!(all, [("remote-only".to_owned(), Some("blue".to_owned()))]);
    assert!(enabled);
    assert!(missing, "no value anywhere: the default");
    assert_eq!(payload, None);
    assert_eq!(
        seen.lock().unwrap().requests.len(),
        3,
        "bulk, enabled, missing"
    );
    // Events: remote-only and nowhere were read with tracking; the bulk read and the payload
    // read send none.
    assert_eq!(ph.pending(), 2);
}

/// A flag read dropped while it waits for the server (a `select`, a `with_timeout` around it)
/// closes its query: the next remote read is not kept waiting behind it.
#[test]
fn a_dropped_remote_read_closes_its_query() {
    use posthog_embedded::adapters::embassy::FlagRead;
    use posthog_embedded::flags::{EvalContext, FlagValue};

    let (addr, seen) = server(vec![Reply::Flags]);
    let (ph, mut runner) = start(Config::new("phc_embassy", 0x5eed).flush_at(100), 2048);
    let ctx = EvalContext {
        distinct_id: "device-1",
        device_id: None,
        person: &[],
        groups: &[],
    };
    // No runner yet: the read waits, and is dropped after 20 ms.
    let gave_up = embassy_futures::block_on(embassy_time::with_timeout(
        embassy_time::Duration::from_millis(20),
        ph.get_feature_flag("remote-only", &ctx, FlagRead::new()),
    ));
    assert!(gave_up.is_err());
    // The next read gets its answer over the runner (without the query closed, it would wait
    // behind it until its own deadline and get nothing).
    let v: Option<FlagValue> = with_runner(
        &mut runner,
        tcp(addr),
        ph.get_feature_flag("remote-only", &ctx, FlagRead::new()),
    );
    assert_eq!(v, Some(FlagValue::variant("blue").unwrap()));
    assert_eq!(seen.lock().unwrap().requests.len(), 1);
}

/// A staging store for the tests below: room for `flags` flags.
fn staging_store(flags: usize) -> posthog_embedded::flags::FlagTables<'static> {
    posthog_embedded::flags::FlagTables::with_capacity(posthog_embedded::flags::Requirements {
        flags,
        nodes: 64,
        bytes: 1024,
    })
}

/// `device-1` with no properties.
fn device_1() -> posthog_embedded::flags::EvalContext<'static> {
    posthog_embedded::flags::EvalContext {
        distinct_id: "device-1",
        device_id: None,
        person: &[],
        groups: &[],
    }
}

/// With a staging store, a poll's definitions are loaded outside the client's lock and swapped
/// in: a good document goes into use, a broken one changes nothing, and the staging store is
/// reused for the next poll (it holds the previous definitions after each swap).
#[test]
fn polled_definitions_load_in_the_staging_store_and_swap_in() {
    use posthog_embedded::flags::FlagValue;
    let (addr, seen) = server(vec![
        Reply::Definitions,
        Reply::DefinitionsBroken,
        Reply::DefinitionsGamma,
    ]);
    let (ph, mut runner) = start(
        Config::new("phc_embassy", 0x5eed).secret_key("phx_embassy_secret"),
        4096,
    );
    runner.stage_definitions(staging_store(4));
    let ctx = device_1();
    let mut link = runner.link(tcp(addr));
    drive(&mut link, || ph.stats().definitions_loaded == 1);
    assert_eq!(ph.feature_flag("beta", &ctx), Ok(FlagValue::Bool(true)));

    ph.reload_definitions();
    drive(&mut link, || ph.stats().definitions_failed == 1);
    assert_eq!(
        ph.feature_flag("beta", &ctx),
        Ok(FlagValue::Bool(true)),
        "a broken document changes nothing"
    );

    ph.reload_definitions();
    drive(&mut link, || ph.stats().definitions_loaded == 2);
    assert_eq!(ph.feature_flag("gamma", &ctx), Ok(FlagValue::Bool(true)));
    assert!(ph.feature_flag("beta", &ctx).is_err(), "beta is gone");
    assert_eq!(seen.lock().unwrap().requests.len(), 3);
}

/// The handle's staged load: parsed into the caller's store, then swapped in; the caller gets
/// the old definitions back, and a failed load keeps the ones in use.
#[test]
fn handle_loads_definitions_through_a_staging_store() {
    use posthog_embedded::flags::{FlagValue, LoadError};
    let (ph, _runner) = start(Config::new("phc_embassy", 0x5eed), 1024);
    let mut staging = staging_store(4);
    let ctx = device_1();
    let doc = |key: &str| {
        format!(
            r#"{{"flags":[{{"id":1,"key":"{key}","active":true,"filters":{{"groups":[{{"properties":[],"rollout_percentage":100}}]}}}}]}}"#
        )
    };
    ph.load_definitions_staged(&mut staging, doc("one").as_bytes())
        .unwrap();
    assert_eq!(ph.feature_flag("one", &ctx), Ok(FlagValue::Bool(true)));
    assert!(
        !staging.is_loaded(),
        "the staging store holds the old (empty) tables"
    );

    ph.load_definitions_staged(&mut staging, doc("two").as_bytes())
        .unwrap();
    assert_eq!(ph.feature_flag("two", &ctx), Ok(FlagValue::Bool(true)));
    assert!(
        staging.evaluate("one", &ctx, None).is_ok(),
        "and now the previous ones"
    );

    let err = ph
        .load_definitions_staged(&mut staging, b"{\"flags\": [")
        .unwrap_err();
    assert!(matches!(err, LoadError::Json(_)), "{err:?}");
    assert_eq!(ph.feature_flag("two", &ctx), Ok(FlagValue::Bool(true)));
    let s = ph.stats();
    assert_eq!((s.definitions_loaded, s.definitions_failed), (2, 1));
}

/// The poll's document really goes through the staging store (not the client's, under the
/// lock): a staging store too small for it refuses it, although the client's would fit.
#[test]
fn a_staging_store_too_small_refuses_polled_definitions() {
    use posthog_embedded::flags::LoadError;
    let (addr, _seen) = server(vec![Reply::Definitions]);
    let (ph, mut runner) = start(
        Config::new("phc_embassy", 0x5eed).secret_key("phx_embassy_secret"),
        4096,
    );
    runner.stage_definitions(staging_store(0));
    let mut link = runner.link(tcp(addr));
    drive(&mut link, || ph.stats().definitions_failed == 1);
    assert!(matches!(
        ph.stats().last_error,
        Some(posthog_embedded::client::DeliveryError::Definitions(
            LoadError::Capacity { .. }
        ))
    ));
    assert!(!ph.with(|c, _| c.is_local_evaluation_ready()));
}
