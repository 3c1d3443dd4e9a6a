//! The embassy driver over embassy's own TCP/IP stack, on a Linux host: embassy-executor
//! (`platform-std`), embassy-net on a TAP device, and [`TcpConnect`] carrying the
//! [`Runner`]'s requests to an ingest server, exactly as on a microcontroller with an Ethernet
//! or Wi-Fi chip (only the network driver and the executor's platform differ).
//!
//! It captures a short device session: an `$identify` with `$set` device properties, a flag
//! read from the definitions compiled into the binary (`examples/data/sample_definitions.json`,
//! which queues `$feature_flag_called`), the event that flag turns on, and a few sensor
//! readings. Then it shuts the client down, waits until nothing is pending and prints the
//! client's counters. Exit status: 0 only when every batch got a 2xx at its first attempt
//! (nothing dropped, nothing retried), 1 when not, 2 on a setup error, 3 past the deadline.
//! It never runs longer than about 20 s.
//!
//! # Running it
//!
//! Opening a TAP device needs root and `/dev/net/tun`. `scripts/embassy-net-host.sh` does
//! everything in a private network namespace (TAP device, addresses, the ingest server, this
//! example, checks of what the server received) and cleans up:
//!
//! ```sh
//! sudo scripts/embassy-net-host.sh
//! ```
//!
//! By hand, with a TAP device whose kernel side is 192.168.69.1/24 and a server listening
//! there:
//!
//! ```sh
//! cargo build --features std,embassy-net --example embassy_net_host
//! sudo target/debug/examples/embassy_net_host --tap tap0 --server 192.168.69.1:8080
//! ```
//!
//! Options (each also read from the environment variable named in brackets):
//! `--tap NAME` \[`PH_TAP`\] (default `tap0`), `--server HOST:PORT` \[`PH_SERVER`\]
//! (default `192.168.69.1:8080`; a host name is resolved at every connect through
//! [`DnsTcpConnect`], which needs `--dns`), `--dns IP` \[`PH_DNS`\] (the DNS server),
//! `--resolve-timeout-ms MS` \[`PH_RESOLVE_TIMEOUT_MS`\] (default 5000), `--address IP/PREFIX`
//! \[`PH_ADDRESS`\] (this device, default `192.168.69.2/24`), `--gateway IP` \[`PH_GATEWAY`\]
//! (default `192.168.69.1`), `--expect-retries` (success then needs at least one failed
//! attempt, retried until every event was delivered: the DNS failure passes of the script).
//!
//! [`TcpConnect`]: posthog_embedded::adapters::embassy_net::TcpConnect
//! [`DnsTcpConnect`]: posthog_embedded::adapters::embassy_net::DnsTcpConnect
//! [`Runner`]: posthog_embedded::adapters::embassy::Runner

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{SystemTime, UNIX_EPOCH};

use embassy_executor::Spawner;
use embassy_futures::select::{select, Either};
use embassy_net::dns::DnsSocket;
use embassy_net::tcp::TcpSocket;
use embassy_net::{Ipv4Cidr, Stack, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::{Duration, Instant, Timer};
use posthog_embedded::adapters::embassy::{self, Buffers, Posthog, Runner, State, Timeouts};
use posthog_embedded::adapters::embassy_net::{DnsTcpConnect, TcpConnect};
use posthog_embedded::capture::EventOptions;
use posthog_embedded::client::{Client, ClientStats, Config};
use posthog_embedded::flags::{EvalContext, PropertyValue};
use posthog_embedded::json::write::Object;
use posthog_embedded::resources::Resources;
use posthog_embedded::PropertyError;

/// A fake project key: a local ingest server accepts any.
const API_KEY: &str = "phc_embassy_net_host_example";
const DEVICE_ID: &str = "embassy-net-host-0001";
const FIRMWARE_VERSION: &str = "1.4.2";
const BOARD: &str = "linux-tap";

/// Flag definitions as `/flags/definitions` returns them, compiled into the binary.
static DEFINITIONS: &[u8] = include_bytes!("data/sample_definitions.json");
/// A semver-targeted flag: on for firmware 1.4.0 and later, with a JSON payload.
const SAMPLING_FLAG: &str = "new-sampling-rate";

const READINGS: u32 = 3;
/// Readings this far apart: the first event waits at least 3 periods before it is sent.
const READING_PERIOD: Duration = Duration::from_millis(250);
/// How long the final flush may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole session, whatever happens (a watchdog thread enforces it 5 s later too).
const HARD_DEADLINE: Duration = Duration::from_secs(15);

/// The capacities, named once: 8 KiB of events; the sample definitions need 20 flags, 75
/// nodes and 1,077 bytes of text and compiled patterns; 64 `$feature_flag_called` de-duplication entries.
type PostHogResources = Resources<8192, 20, 96, 1152, 64>;

type M = CriticalSectionRawMutex;

/// Command line and environment.
struct Args {
    tap: String,
    server: Server,
    dns: Option<Ipv4Addr>,
    resolve_timeout: Duration,
    address: Ipv4Cidr,
    gateway: Ipv4Addr,
    expect_retries: bool,
}

/// Where the ingest server is.
#[derive(Clone, Copy)]
enum Server {
    /// An address.
    Ip(SocketAddrV4),
    /// A host name, resolved at every connect.
    Name(&'static str, u16),
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(a) => write!(f, "{a}"),
            Self::Name(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

/// Why a run failed (printed before exiting with a failure status).
enum Failure {
    Setup(String),
    Delivery(&'static str),
    Deadline,
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    std::thread::spawn(|| {
        std::thread::sleep((HARD_DEADLINE + Duration::from_secs(5)).into());
        eprintln!("FAIL: watchdog: the executor did not finish in time");
        std::process::exit(3);
    });
    let verdict = match select(run(spawner), Timer::after(HARD_DEADLINE)).await {
        Either::First(verdict) => verdict,
        Either::Second(()) => Err(Failure::Deadline),
    };
    std::process::exit(match verdict {
        Ok(()) => {
            println!("PASS: every batch got a 2xx");
            0
        }
        Err(Failure::Setup(why)) => {
            eprintln!("error: {why}");
            2
        }
        Err(Failure::Delivery(why)) => {
            eprintln!("FAIL: {why}");
            1
        }
        Err(Failure::Deadline) => {
            eprintln!("FAIL: the {}s deadline passed", HARD_DEADLINE.as_secs());
            3
        }
    });
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, TunTapDevice>) -> ! {
    runner.run().await
}

/// The task that talks to the server: a socket, and the runner over it (to an address, or to
/// a name resolved at every connect).
#[embassy_executor::task]
async fn posthog_task(
    mut runner: Runner<'static, M>,
    stack: Stack<'static>,
    server: Server,
    resolve_timeout: Duration,
) -> ! {
    let (mut socket_rx, mut socket_tx) = ([0u8; 2048], [0u8; 4096]);
    let socket = TcpSocket::new(stack, &mut socket_rx, &mut socket_tx);
    match server {
        Server::Ip(addr) => runner.run(TcpConnect::new(socket, addr)).await,
        Server::Name(host, port) => {
            let conn = DnsTcpConnect::new(socket, DnsSocket::new(stack), host, port)
                .resolve_timeout(resolve_timeout);
            runner.run(conn).await
        }
    }
}

async fn run(spawner: Spawner) -> Result<(), Failure> {
    let args = parse_args().map_err(Failure::Setup)?;
    let seed = boot_entropy();

    // The network: embassy-net on the TAP device, with a static address.
    let device = TunTapDevice::new(&args.tap).map_err(|e| {
        Failure::Setup(format!(
            "cannot open TAP device {}: {e} (needs root and /dev/net/tun; \
             scripts/embassy-net-host.sh sets everything up)",
            args.tap
        ))
    })?;
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: args.address,
        gateway: Some(args.gateway),
        dns_servers: args.dns.into_iter().collect(),
    });
    // Statics on firmware; leaked once here, which is the same thing on a host.
    let resources = Box::leak(Box::new(StackResources::<2>::new()));
    let (stack, net_runner) = embassy_net::new(device, config, resources, seed);
    spawner.spawn(net_task(net_runner).map_err(|e| Failure::Setup(format!("{e:?}")))?);
    stack.wait_config_up().await;
    println!(
        "embassy-net up on {}: {} via {}, sending to http://{}",
        args.tap, args.address, args.gateway, args.server
    );

    // The client, its runner, and a handle for the application.
    let config = Config::new(API_KEY, seed)
        .flush_at(50)
        // Small batches: the session takes two requests over one kept-alive connection.
        .max_batch_events(4)
        .flush_interval(posthog_embedded::Duration::from_secs(1));
    // Statics on firmware (`ConstStaticCell`, `StaticCell`); leaked once here, the same thing
    // on a host.
    let resources = Box::leak(Box::new(PostHogResources::new()));
    let client = Client::new(config, resources)
        .map_err(|e| Failure::Setup(format!("configuration: {e}")))?;
    let buffers = Buffers {
        tx: Box::leak(Box::new([0u8; 4096])),
        rx: Box::leak(Box::new([0u8; 1024])),
        body: Box::leak(Box::new([0u8; 256])),
    };
    let host: &'static str = Box::leak(args.server.to_string().into_boxed_str());
    if let (Server::Name(..), None) = (args.server, args.dns) {
        return Err(Failure::Setup("a host name needs --dns".into()));
    }
    let state = Box::leak(Box::new(State::new()));
    let (ph, mut runner) = embassy::new(client, state, buffers, host)
        .map_err(|e| Failure::Setup(format!("driver: {e}")))?;
    runner
        .set_timeouts(Timeouts::new().request(Duration::from_secs(5)))
        .map_err(|e| Failure::Setup(format!("timeouts: {e}")))?;
    // No wall clock (as on a device before SNTP): events carry `offset`, and the server
    // derives their time from when it received them (the script checks it).
    let loaded = ph
        .load_definitions(DEFINITIONS)
        .map_err(|e| Failure::Setup(format!("flag definitions refused: {e}")))?;
    println!(
        "flag definitions: {} flags, {} nodes, {} bytes of text",
        loaded.flags, loaded.nodes, loaded.bytes
    );
    spawner.spawn(
        posthog_task(runner, stack, args.server, args.resolve_timeout)
            .map_err(|e| Failure::Setup(format!("{e:?}")))?,
    );

    session(&ph).await?;

    let drained = ph.shutdown(Instant::now() + DRAIN_TIMEOUT).await;
    println!(
        "drained: {} sent while waiting, {} pending",
        drained.sent, drained.pending
    );
    check_delivery(ph.stats(), drained.pending, args.expect_retries)
}

/// The device's person properties, for flag evaluation.
const DEVICE_PROPERTIES: [(&str, PropertyValue<'static>); 2] = [
    ("firmware_version", PropertyValue::Str(FIRMWARE_VERSION)),
    ("board", PropertyValue::Str(BOARD)),
];

/// What the device does: identify, read a flag, act on it, take readings. Events after the
/// `$identify` carry `uptime_ms`, their capture instant, so a test can check the time the
/// server derives from `offset`.
async fn session(ph: &Posthog<'static, M>) -> Result<(), Failure> {
    let queued = |r: Result<_, posthog_embedded::CaptureError>| {
        r.map(drop).map_err(|e| {
            eprintln!("event not queued: {e}");
            Failure::Delivery("an event was not queued")
        })
    };
    let capture = |name: &str, props: &dyn Fn(&mut Object<'_, '_>) -> Result<(), PropertyError>| {
        queued(ph.with(|client, now| {
            client.capture(now, name, DEVICE_ID, &EventOptions::new(), |p| {
                p.prop("uptime_ms", now.mono.as_millis())?;
                props(p)
            })
        }))
    };
    queued(ph.identify(DEVICE_ID, &EventOptions::new(), |person| {
        person.set(|p| {
            p.prop("firmware_version", FIRMWARE_VERSION)?
                .prop("board", BOARD)?
                .prop("network", "embassy-net")?;
            Ok(())
        })?;
        Ok(())
    }))?;

    let ctx = EvalContext {
        distinct_id: DEVICE_ID,
        device_id: None,
        person: &DEVICE_PROPERTIES,
        groups: &[],
    };
    // Evaluated locally; queues `$feature_flag_called`. Off when it cannot be decided.
    let enabled = ph.is_feature_enabled_locally(SAMPLING_FLAG, &ctx, false);
    let payload = ph
        .feature_flag_payload(SAMPLING_FLAG, &ctx, None, |p| p.map(str::to_owned))
        .ok()
        .flatten();
    println!("flag {SAMPLING_FLAG} = {enabled:?}, payload {payload:?}");
    if enabled {
        capture("sampling interval changed", &|p| {
            p.prop("flag", SAMPLING_FLAG)?
                .prop("interval_ms", 5_000u32)?;
            Ok(())
        })?;
    }

    for i in 0..READINGS {
        Timer::after(READING_PERIOD).await;
        capture("sensor reading", &|p| {
            p.prop("sample", i)?
                .prop("temperature_c", 21.5 + 0.25 * i as f32)?
                .prop("battery_mv", 3_712 - 3 * i)?;
            Ok(())
        })?;
    }
    Ok(())
}

/// Success only when every captured event was delivered by a 2xx with no drop, and with no
/// retry (or, with `expect_retries`, after at least one failed attempt).
fn check_delivery(stats: ClientStats, pending: usize, expect_retries: bool) -> Result<(), Failure> {
    println!(
        "captured {}, sent {}, requests {}, retries {}, dropped {}, pending {}",
        stats.captured,
        stats.sent,
        stats.requests,
        stats.retries,
        stats.queue.dropped(),
        pending
    );
    println!("stats: {stats:?}");
    if let Some(e) = stats.last_error {
        eprintln!("last delivery error: {e}");
    }
    let problem = if pending != 0 {
        "events still pending after the drain timeout"
    } else if stats.queue.dropped() != 0 {
        "events dropped"
    } else if !expect_retries && (stats.retries != 0 || stats.last_error.is_some()) {
        "a batch did not get a 2xx at its first attempt"
    } else if expect_retries && stats.retries == 0 {
        "no attempt failed, although the test expected one to"
    } else if stats.sent != stats.captured {
        "not every captured event was acknowledged"
    } else if stats.invalid != 0 || stats.gated != 0 || stats.filtered != 0 {
        "events refused before queuing"
    } else {
        return Ok(());
    };
    Err(Failure::Delivery(problem))
}

fn parse_args() -> Result<Args, String> {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let mut tap = env("PH_TAP", "tap0");
    let mut server = env("PH_SERVER", "192.168.69.1:8080");
    let mut dns = env("PH_DNS", "");
    let mut resolve_timeout = env("PH_RESOLVE_TIMEOUT_MS", "5000");
    let mut address = env("PH_ADDRESS", "192.168.69.2/24");
    let mut gateway = env("PH_GATEWAY", "192.168.69.1");
    let mut expect_retries = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--tap" => &mut tap,
            "--server" => &mut server,
            "--dns" => &mut dns,
            "--resolve-timeout-ms" => &mut resolve_timeout,
            "--address" => &mut address,
            "--gateway" => &mut gateway,
            "--expect-retries" => {
                expect_retries = true;
                continue;
            }
            "-h" | "--help" => {
                println!(
                    "usage: embassy_net_host [--tap NAME] [--server HOST:PORT] [--dns IP] \
                     [--resolve-timeout-ms MS] [--address IP/PREFIX] [--gateway IP] \
                     [--expect-retries]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        };
        *slot = args.next().ok_or(format!("{flag} needs a value"))?;
    }
    let (ip, prefix) = address
        .split_once('/')
        .ok_or(format!("--address {address:?}: expected IP/PREFIX"))?;
    let bad = |what: &str, v: &str| format!("{what} {v:?} is not valid");
    let server = match server.parse::<SocketAddrV4>() {
        Ok(addr) => Server::Ip(addr),
        Err(_) => {
            let (host, port) = server
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                .filter(|(h, _)| !h.is_empty())
                .ok_or_else(|| bad("--server", &server))?;
            Server::Name(Box::leak(host.to_owned().into_boxed_str()), port)
        }
    };
    Ok(Args {
        tap,
        server,
        dns: match dns.as_str() {
            "" => None,
            ip => Some(ip.parse().map_err(|_| bad("--dns", ip))?),
        },
        resolve_timeout: Duration::from_millis(
            resolve_timeout
                .parse()
                .ok()
                .filter(|ms| *ms > 0)
                .ok_or_else(|| bad("--resolve-timeout-ms", &resolve_timeout))?,
        ),
        address: Ipv4Cidr::new(
            ip.parse().map_err(|_| bad("--address", &address))?,
            prefix
                .parse()
                .ok()
                .filter(|p| *p <= 32)
                .ok_or_else(|| bad("--address", &address))?,
        ),
        gateway: gateway.parse().map_err(|_| bad("--gateway", &gateway))?,
        expect_retries,
    })
}

/// Differs per run: seeds uuids, jitter and TCP sequence numbers.
fn boot_entropy() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}
