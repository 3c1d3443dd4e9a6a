//! `adapters::embassy_net::TcpConnect` on the host, without root: two embassy-net stacks joined
//! by an in-memory Ethernet link, a client socket wrapped in `TcpConnect` and servers written
//! with plain embassy-net sockets. Connect, send, graceful close, reconnect; a refused connect;
//! a peer that never closes; a socket left mid-connect; and the embassy `Runner` delivering
//! batches over it, across a server-side `Connection: close`.
#![cfg(feature = "embassy-net")]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use embassy_futures::select::{select, Either};
use embassy_net::driver::{Capabilities, Driver, HardwareAddress, LinkState, RxToken, TxToken};
use embassy_net::tcp::{Error, State, TcpSocket};
use embassy_net::{Config, Ipv4Address, Ipv4Cidr, Stack, StackResources, StaticConfigV4};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_time::{Duration, Instant, Timer};
use embedded_io_async::{Read as _, Write as _};
use posthog_embedded::adapters::embassy::{self, Buffers, Connect};
use posthog_embedded::adapters::embassy_net::TcpConnect;
use posthog_embedded::capture::EventOptions;
use posthog_embedded::client::Client;
use posthog_embedded::resources::Resources;

const CLIENT_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
const SERVER_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const PORT: u16 = 8080;
/// Every test finishes well within this, or fails.
const TEST_DEADLINE: Duration = Duration::from_secs(10);

// ---- An in-memory Ethernet link ------------------------------------------------------------

#[derive(Default)]
struct Inbox {
    frames: VecDeque<Vec<u8>>,
    waker: Option<Waker>,
}

/// One end of the link: receives from its own inbox, transmits into the peer's (frames are
/// lost while the link is `unplugged`).
struct LinkEnd {
    mac: [u8; 6],
    inbox: Arc<Mutex<Inbox>>,
    peer: Arc<Mutex<Inbox>>,
    unplugged: Arc<AtomicBool>,
}

fn link() -> (LinkEnd, LinkEnd) {
    let (a, b) = (Arc::default(), Arc::default());
    let unplugged = Arc::default();
    (
        LinkEnd {
            mac: [0x02, 0, 0, 0, 0, 0x02],
            inbox: Arc::clone(&a),
            peer: Arc::clone(&b),
            unplugged: Arc::clone(&unplugged),
        },
        LinkEnd {
            mac: [0x02, 0, 0, 0, 0, 0x01],
            inbox: b,
            peer: a,
            unplugged,
        },
    )
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a LinkEnd);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(mut self, f: F) -> R {
        f(&mut self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        if self.0.unplugged.load(Ordering::SeqCst) {
            return r;
        }
        let mut peer = self.0.peer.lock().unwrap();
        peer.frames.push_back(frame);
        if let Some(w) = peer.waker.take() {
            w.wake();
        }
        r
    }
}

impl Driver for LinkEnd {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, cx: &mut Context<'_>) -> Option<(Rx, Tx<'_>)> {
        let mut inbox = self.inbox.lock().unwrap();
        match inbox.frames.pop_front() {
            Some(frame) => Some((Rx(frame), Tx(self))),
            None => {
                inbox.waker = Some(cx.waker().clone());
                None
            }
        }
    }

    fn transmit(&mut self, _cx: &mut Context<'_>) -> Option<Tx<'_>> {
        Some(Tx(self))
    }

    fn link_state(&mut self, _cx: &mut Context<'_>) -> LinkState {
        LinkState::Up
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = 1514;
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}

// ---- A small executor, and the two stacks -----------------------------------------------------

/// A task's waker: marks it for polling and unparks the thread.
struct Woken {
    flag: AtomicBool,
    thread: thread::Thread,
}

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.flag.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// One task of [`block_on3`], polled only when woken.
struct Task<F: Future> {
    fut: Pin<Box<F>>,
    woken: Arc<Woken>,
    waker: Waker,
}

impl<F: Future> Task<F> {
    fn new(fut: F) -> Self {
        let woken = Arc::new(Woken {
            flag: AtomicBool::new(true),
            thread: thread::current(),
        });
        let waker = Waker::from(Arc::clone(&woken));
        Self {
            fut: Box::pin(fut),
            woken,
            waker,
        }
    }

    fn poll_if_woken(&mut self) -> Poll<F::Output> {
        if !self.woken.flag.swap(false, Ordering::SeqCst) {
            return Poll::Pending;
        }
        self.fut
            .as_mut()
            .poll(&mut Context::from_waker(&self.waker))
    }
}

/// Runs `main` and two endless tasks (the stacks) on this thread until `main` finishes,
/// sleeping while nothing is woken. Each task has its own waker, as on embassy-executor: a
/// socket call wakes its stack's runner, never the caller (one shared waker would spin).
fn block_on3<T>(
    main: impl Future<Output = T>,
    a: impl Future<Output = Infallible>,
    b: impl Future<Output = Infallible>,
) -> T {
    let (mut main, mut a, mut b) = (Task::new(main), Task::new(a), Task::new(b));
    loop {
        if let Poll::Ready(never) = a.poll_if_woken() {
            match never {}
        }
        if let Poll::Ready(never) = b.poll_if_woken() {
            match never {}
        }
        if let Poll::Ready(r) = main.poll_if_woken() {
            return r;
        }
        if ![&main.woken, &a.woken, &b.woken]
            .iter()
            .any(|w| w.flag.load(Ordering::SeqCst))
        {
            thread::park();
        }
    }
}

fn config(ip: Ipv4Address) -> Config {
    Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(ip, 24),
        gateway: None,
        dns_servers: Default::default(),
    })
}

async fn forever(runner: &mut embassy_net::Runner<'_, LinkEnd>) -> Infallible {
    runner.run().await
}

/// Runs `body(client_stack, server_stack)` with both stacks running, under a deadline.
fn run<T>(body: impl AsyncFnOnce(Stack<'_>, Stack<'_>) -> T) -> T {
    run_on(link(), body)
}

/// [`run`] over the given link.
fn run_on<T>((a, b): (LinkEnd, LinkEnd), body: impl AsyncFnOnce(Stack<'_>, Stack<'_>) -> T) -> T {
    let mut res_a = StackResources::<2>::new();
    let mut res_b = StackResources::<2>::new();
    let (client, mut client_runner) = embassy_net::new(a, config(CLIENT_IP), &mut res_a, 1);
    let (server, mut server_runner) = embassy_net::new(b, config(SERVER_IP), &mut res_b, 2);
    let body = embassy_time::with_timeout(TEST_DEADLINE, body(client, server));
    block_on3(
        body,
        forever(&mut client_runner),
        forever(&mut server_runner),
    )
    .expect("test deadline passed")
}

/// Runs `client` while `server` (which never finishes on its own) serves it.
async fn serve<T>(server: impl Future<Output = ()>, client: impl Future<Output = T>) -> T {
    match select(server, client).await {
        Either::First(()) => panic!("server stopped"),
        Either::Second(r) => r,
    }
}

/// How a server saw a connection end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The peer's FIN: a graceful close.
    Eof,
    /// The peer's RST (or a timeout).
    Reset,
}

/// Echoes each connection until the peer closes, then closes gracefully; records how each
/// connection ended.
async fn echo_server(stack: Stack<'_>, listening: &Cell<bool>, ends: &RefCell<Vec<End>>) {
    let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
    let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
    loop {
        accept(&mut socket, listening).await;
        let mut buf = [0u8; 256];
        let end = loop {
            match socket.read(&mut buf).await {
                Ok(0) => break End::Eof,
                Ok(n) => {
                    if socket.write_all(&buf[..n]).await.is_err() {
                        break End::Reset;
                    }
                }
                Err(Error::ConnectionReset) => break End::Reset,
            }
        };
        ends.borrow_mut().push(end);
        socket.close();
        let _ = socket.flush().await;
        socket.abort();
        let _ = socket.flush().await;
    }
}

async fn roundtrip(conn: &mut TcpConnect<'_>, msg: &[u8]) {
    conn.write_all(msg).await.unwrap();
    conn.flush().await.unwrap();
    let mut echo = vec![0u8; msg.len()];
    conn.read_exact(&mut echo).await.unwrap();
    assert_eq!(echo, msg);
}

/// `socket.accept(PORT)`, with `listening` true while it waits (the socket is in LISTEN from
/// the first poll). smoltcp has no backlog: a SYN arriving while no socket listens is refused.
async fn accept(socket: &mut TcpSocket<'_>, listening: &Cell<bool>) {
    listening.set(true);
    let accepted = socket.accept(PORT).await;
    listening.set(false);
    accepted.unwrap();
}

/// Waits until the server listens again (after it finished with the previous connection).
async fn until_listening(listening: &Cell<bool>) {
    while !listening.get() {
        Timer::after_millis(1).await;
    }
}

fn closed(conn: &TcpConnect<'_>) -> bool {
    matches!(conn.socket().state(), State::Closed | State::TimeWait)
}

// ---- Tests ------------------------------------------------------------------------------------

#[test]
fn connect_send_close_reconnect() {
    let ends = RefCell::new(Vec::new());
    let listening = Cell::new(false);
    run(async |client, server| {
        let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
        let socket = TcpSocket::new(client, &mut rx, &mut tx);
        let mut conn = TcpConnect::new(socket, (SERVER_IP, PORT));
        assert_eq!(conn.remote(), (SERVER_IP, PORT).into());
        serve(echo_server(server, &listening, &ends), async {
            for round in 0..3u8 {
                until_listening(&listening).await;
                conn.connect().await.unwrap();
                roundtrip(&mut conn, format!("ping {round}").as_bytes()).await;
                conn.disconnect().await;
                assert!(closed(&conn), "state {:?}", conn.socket().state());
            }
            // Give the server a moment to record the last close.
            while ends.borrow().len() < 3 {
                Timer::after_millis(1).await;
            }
        })
        .await;
    });
    // Every close was graceful: the server read an end of stream, never a reset.
    assert_eq!(*ends.borrow(), [End::Eof; 3]);
}

#[test]
fn refused_connect_is_an_error_and_the_next_one_works() {
    let ends = RefCell::new(Vec::new());
    let listening = Cell::new(false);
    run(async |client, server| {
        let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
        let mut conn = TcpConnect::new(TcpSocket::new(client, &mut rx, &mut tx), (SERVER_IP, PORT));
        // Nobody listens yet: the server stack answers the SYN with a RST.
        assert_eq!(conn.connect().await, Err(Error::ConnectionReset));
        assert!(closed(&conn));
        serve(echo_server(server, &listening, &ends), async {
            until_listening(&listening).await;
            conn.connect().await.unwrap();
            roundtrip(&mut conn, b"after refusal").await;
            conn.disconnect().await;
        })
        .await;
    });
}

#[test]
fn peer_that_never_closes_is_aborted_after_the_close_timeout() {
    let accepted = Cell::new(0u32);
    let listening = Cell::new(false);
    let peer_state = Cell::new(None);
    run(async |client, server| {
        // Accepts, reads to the end of stream, then never closes its side.
        let stubborn = async {
            let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
            let mut socket = TcpSocket::new(server, &mut rx, &mut tx);
            loop {
                accept(&mut socket, &listening).await;
                accepted.set(accepted.get() + 1);
                let mut buf = [0u8; 64];
                while socket.read(&mut buf).await.is_ok_and(|n| n > 0) {}
                // Half-closed by the client; wait for its RST.
                while socket.state() != State::Closed {
                    Timer::after_millis(1).await;
                }
                peer_state.set(Some(socket.state()));
            }
        };
        let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
        let mut conn = TcpConnect::new(TcpSocket::new(client, &mut rx, &mut tx), (SERVER_IP, PORT))
            .close_timeout(Duration::from_millis(100));
        serve(stubborn, async {
            until_listening(&listening).await;
            conn.connect().await.unwrap();
            conn.write_all(b"hello").await.unwrap();
            conn.flush().await.unwrap();
            let started = Instant::now();
            // Bounded by the close timeout, not the peer's patience (which is endless: a
            // disconnect that waited for it would never return, and `run` fails the test at its
            // deadline). It did wait for a graceful close first, then aborted.
            conn.disconnect().await;
            assert!(started.elapsed() >= Duration::from_millis(100));
            assert_eq!(conn.socket().state(), State::Closed);
            // The socket is reusable at once.
            until_listening(&listening).await;
            conn.connect().await.unwrap();
            conn.disconnect().await;
        })
        .await;
    });
    assert_eq!(accepted.get(), 2);
    assert_eq!(peer_state.get(), Some(State::Closed));
}

#[test]
fn a_socket_left_mid_connect_is_reset_before_the_next_connect() {
    let ends = RefCell::new(Vec::new());
    let listening = Cell::new(false);
    let (a, b) = link();
    let unplugged = Arc::clone(&a.unplugged);
    run_on((a, b), async |client, server| {
        let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
        let mut conn = TcpConnect::new(TcpSocket::new(client, &mut rx, &mut tx), (SERVER_IP, PORT));
        serve(echo_server(server, &listening, &ends), async {
            until_listening(&listening).await;
            conn.connect().await.unwrap();
            roundtrip(&mut conn, b"before").await;
            conn.disconnect().await;
            until_listening(&listening).await;

            // The SYN is lost and a driver timeout cancels the connect: SYN-SENT is left behind,
            // where a plain `TcpSocket::connect` fails.
            unplugged.store(true, Ordering::SeqCst);
            let attempt =
                embassy_time::with_timeout(Duration::from_millis(50), conn.connect()).await;
            assert!(
                attempt.is_err(),
                "connect over a cut link finished: {attempt:?}"
            );
            assert_eq!(conn.socket().state(), State::SynSent);
            assert_eq!(
                conn.socket_mut().connect((SERVER_IP, PORT)).await,
                Err(embassy_net::tcp::ConnectError::InvalidState)
            );

            unplugged.store(false, Ordering::SeqCst);
            conn.connect().await.unwrap();
            roundtrip(&mut conn, b"after").await;
            conn.disconnect().await;
        })
        .await;
    });
    assert_eq!(*ends.borrow(), [End::Eof; 2]);
}

/// A minimal ingest server: answers every request 200, closing the connection after the first
/// one (`Connection: close`); records the events of each `/batch/` and the connections.
async fn ingest_server(
    stack: Stack<'_>,
    listening: &Cell<bool>,
    events: &RefCell<Vec<serde_json::Value>>,
    conns: &Cell<u32>,
) {
    let (mut rx, mut tx) = ([0u8; 4096], [0u8; 1024]);
    let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
    let mut requests = 0;
    loop {
        accept(&mut socket, listening).await;
        conns.set(conns.get() + 1);
        let mut buf = Vec::new();
        'conn: loop {
            // Head, then the body by Content-Length.
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let mut chunk = [0u8; 512];
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => break 'conn,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
            assert!(head.starts_with("POST /batch/ HTTP/1.1\r\n"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .unwrap()
                .parse()
                .unwrap();
            while buf.len() < head_end + len {
                let mut chunk = [0u8; 512];
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => break 'conn,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body: serde_json::Value =
                serde_json::from_slice(&buf[head_end..head_end + len]).unwrap();
            buf.drain(..head_end + len);
            events
                .borrow_mut()
                .extend(body["batch"].as_array().unwrap().iter().cloned());
            requests += 1;
            let close = requests == 1;
            let reply: &[u8] = if close {
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
            };
            socket.write_all(reply).await.unwrap();
            socket.flush().await.unwrap();
            if close {
                break;
            }
        }
        socket.close();
        let _ = socket.flush().await;
        socket.abort();
        let _ = socket.flush().await;
    }
}

#[test]
fn runner_delivers_batches_over_tcp_connect() {
    let events = RefCell::new(Vec::new());
    let conns = Cell::new(0);
    let listening = Cell::new(false);
    let mut resources = Box::new(Resources::<4096, 4, 64, 1024>::new());
    let core = Client::new(
        posthog_embedded::client::Config::new("phc_test", 0x5eed),
        &mut resources,
    )
    .unwrap();
    let mut state = embassy::State::<NoopRawMutex>::new();
    let (mut txb, mut rxb, mut body) = ([0u8; 2048], [0u8; 1024], [0u8; 256]);
    let bufs = Buffers {
        tx: &mut txb,
        rx: &mut rxb,
        body: &mut body,
    };
    let (ph, mut runner) = embassy::new(core, &mut state, bufs, "10.0.0.1:8080").unwrap();
    run(async |client, server| {
        let (mut rx, mut tx) = ([0u8; 1024], [0u8; 2048]);
        let conn = TcpConnect::new(TcpSocket::new(client, &mut rx, &mut tx), (SERVER_IP, PORT));
        let mut runner = runner.link(conn);
        serve(ingest_server(server, &listening, &events, &conns), async {
            // Two batches: the server closes after the first, so the second reconnects.
            for batch in 0..2u32 {
                until_listening(&listening).await;
                for i in 0..3u32 {
                    ph.capture("reading", "device-1", &EventOptions::new(), |p| {
                        p.prop("batch", batch)?.prop("i", i)?;
                        Ok(())
                    })
                    .unwrap();
                }
                ph.request_flush();
                while ph.pending() > 0 {
                    runner.step().await;
                }
            }
            // A third batch over the kept-alive second connection.
            ph.capture("done", "device-1", &EventOptions::new(), |_| Ok(()))
                .unwrap();
            ph.request_flush();
            while ph.pending() > 0 {
                runner.step().await;
            }
        })
        .await;
        let stats = ph.stats();
        assert_eq!((stats.captured, stats.sent, stats.retries), (7, 7, 0));
    });
    let events = events.borrow();
    let names: Vec<_> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["reading"; 6]
            .iter()
            .chain(&["done"])
            .copied()
            .collect::<Vec<_>>()
    );
    assert!(events
        .iter()
        .all(|e| e["properties"]["$lib"] == "posthog-embedded"));
    assert_eq!(conns.get(), 2);
}
