//! The HTTP-level `Transport` trait as an application with its own HTTP client would implement
//! it, driven by `send_due`.

use posthog_embedded::adapters::send_due;
use posthog_embedded::capture::EventOptions;
use posthog_embedded::client::{Client, Config, Header, RequestKind, Transmit, TransportError};
use posthog_embedded::net::http::RetryAfter;
use posthog_embedded::net::transport::{Reply, Transport};
use posthog_embedded::resources::Resources;
use posthog_embedded::{Clock, Duration, Instant};

/// A scripted HTTP client that records what it was asked to send.
struct Scripted {
    replies: Vec<Result<Reply, TransportError>>,
    sent: Vec<(String, String, Vec<String>)>,
}

impl Transport for Scripted {
    async fn send(&mut self, tx: &Transmit<'_>, body: &mut [u8]) -> Result<Reply, TransportError> {
        let headers = tx
            .headers()
            .map(|(k, v)| match v {
                Header::Plain(v) => format!("{k}: {v}"),
                Header::Bearer(_) => format!("{k}: Bearer <secret>"),
            })
            .collect();
        self.sent.push((
            tx.path.to_string(),
            String::from_utf8(tx.body.to_vec()).unwrap(),
            headers,
        ));
        if tx.kind == RequestKind::Definitions {
            let defs = br#"{"flags":[]}"#;
            body[..defs.len()].copy_from_slice(defs);
            return Ok(Reply {
                status: 200,
                body_len: defs.len(),
                ..Reply::default()
            });
        }
        self.replies.remove(0)
    }
}

/// Runs a future that never waits (the scripted transport is synchronous).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

struct FakeClock(std::cell::Cell<u64>);
impl Clock for FakeClock {
    fn now(&self) -> Instant {
        Instant::from_millis(self.0.get())
    }
}

#[test]
fn a_custom_http_client_drives_the_client() {
    let mut res = Box::new(Resources::<4096, 4, 32, 512>::new());
    let mut client = Client::new(
        Config::new("phc_t", 0x5eed).secret_key("phx_s").flush_at(1),
        &mut res,
    )
    .unwrap();
    let clock = FakeClock(std::cell::Cell::new(0));
    let mut http = Scripted {
        replies: vec![
            Ok(Reply {
                status: 429,
                retry_after: Some(RetryAfter::Delay(Duration::from_secs(2))),
                ..Reply::default()
            }),
            Err(TransportError::Timeout),
            Ok(Reply {
                status: 200,
                ..Reply::default()
            }),
        ],
        sent: vec![],
    };
    let (mut tx, mut body) = (vec![0u8; 2048], vec![0u8; 1024]);
    let run = |client: &mut Client<'_>, http: &mut Scripted, tx: &mut [u8], body: &mut [u8]| {
        block_on(send_due(client, http, &clock, tx, body))
    };
    // The first cycle polls definitions (a secret key is set).
    assert!(run(&mut client, &mut http, &mut tx, &mut body));
    assert!(client.is_local_evaluation_ready());
    client
        .capture(clock.read(), "e", "d", &EventOptions::new(), |_| Ok(()))
        .unwrap();
    assert!(run(&mut client, &mut http, &mut tx, &mut body)); // 429, Retry-After 2 s
    assert!(!run(&mut client, &mut http, &mut tx, &mut body), "back-off");
    clock.0.set(client.poll_timeout().unwrap().as_millis());
    assert!(clock.0.get() >= 2000);
    assert!(run(&mut client, &mut http, &mut tx, &mut body)); // timeout
    clock.0.set(client.poll_timeout().unwrap().as_millis());
    assert!(run(&mut client, &mut http, &mut tx, &mut body)); // 200
    assert_eq!(client.pending(), 0);
    assert_eq!(client.stats().sent, 1);
    assert_eq!(http.sent.len(), 4);
    assert_eq!(
        http.sent[0].0,
        "/flags/definitions?token=phc_t&send_cohorts"
    );
    assert!(http.sent[0]
        .2
        .contains(&"Authorization: Bearer <secret>".to_owned()));
    // The same event, the same uuid, on all three attempts.
    let uuids: Vec<String> = http.sent[1..]
        .iter()
        .map(|(_, b, _)| {
            serde_json::from_str::<serde_json::Value>(b).unwrap()["batch"][0]["uuid"].to_string()
        })
        .collect();
    assert!(uuids.windows(2).all(|w| w[0] == w[1]));
}

/// A transport that takes `connect_ms` of the fake clock to get ready, or cannot.
struct Dialling<'c> {
    clock: &'c FakeClock,
    connect_ms: u64,
    refuse: bool,
    bodies: Vec<serde_json::Value>,
}

impl Transport for Dialling<'_> {
    async fn prepare(&mut self) -> Result<(), TransportError> {
        self.clock.0.set(self.clock.0.get() + self.connect_ms);
        if self.refuse {
            Err(TransportError::Connect)
        } else {
            Ok(())
        }
    }

    async fn send(&mut self, tx: &Transmit<'_>, _body: &mut [u8]) -> Result<Reply, TransportError> {
        self.bodies.push(serde_json::from_slice(tx.body).unwrap());
        Ok(Reply {
            status: 200,
            ..Reply::default()
        })
    }
}

/// `send_due` prepares the transport before it renders the request, so the time connecting
/// takes is inside the events' `offset`; a transport that cannot get ready fails the request
/// without sending it, and the client retries.
#[test]
fn send_due_connects_before_rendering() {
    let mut res = Box::new(Resources::<4096, 4, 32, 512>::new());
    let mut client = Client::new(Config::new("phc_t", 0x5eed).flush_at(1), &mut res).unwrap();
    let clock = FakeClock(std::cell::Cell::new(1_000));
    let mut net = Dialling {
        clock: &clock,
        connect_ms: 750,
        refuse: true,
        bodies: vec![],
    };
    let (mut tx, mut body) = (vec![0u8; 2048], vec![0u8; 256]);
    client
        .capture(clock.read(), "boot", "d", &EventOptions::new(), |_| Ok(()))
        .unwrap();
    // Nothing was sent; the batch is retried after back-off.
    assert!(block_on(send_due(
        &mut client,
        &mut net,
        &clock,
        &mut tx,
        &mut body
    )));
    assert!(net.bodies.is_empty());
    assert_eq!((client.pending(), client.stats().retries), (1, 1));
    // Nothing due before the back-off ends: no connection attempt either.
    let before = clock.0.get();
    assert!(!block_on(send_due(
        &mut client,
        &mut net,
        &clock,
        &mut tx,
        &mut body
    )));
    assert_eq!(clock.0.get(), before);

    net.refuse = false;
    clock.0.set(client.poll_timeout().unwrap().as_millis());
    let due_at = clock.0.get();
    assert!(block_on(send_due(
        &mut client,
        &mut net,
        &clock,
        &mut tx,
        &mut body
    )));
    assert_eq!(client.pending(), 0);
    // Captured at 1000 ms, rendered after the 750 ms connect that started at `due_at`.
    assert_eq!(net.bodies[0]["batch"][0]["offset"], due_at + 750 - 1_000);
}
