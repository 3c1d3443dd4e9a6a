//! `serve`: the local PostHog-compatible server.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use clap::Args;
use posthog_embedded_devtools::forward::{describe as describe_forward, ForwardConfig, Forwarder};
use posthog_embedded_devtools::server::{Faults, LocalServer, ServerConfig};
use posthog_embedded_devtools::tls::generate;

use crate::{Failure, Outcome};

#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// Port to listen on (0: any free port; the first line printed tells which).
    #[arg(long, short = 'p', default_value_t = 8010)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Flag definitions to evaluate /flags with and to serve at /flags/definitions
    /// (re-read when the file changes).
    #[arg(long, short = 'd', value_name = "FILE")]
    definitions: Option<PathBuf>,
    /// Append every received event to this file as JSON Lines:
    /// {"received_at","timestamp","path","problems","duplicate","event"}.
    #[arg(long, value_name = "FILE")]
    events_out: Option<PathBuf>,
    /// Fail this fraction of requests (0.0-1.0) with --status (default 503).
    #[arg(long, value_name = "F", value_parser = parse_rate)]
    fail_rate: Option<f64>,
    /// Status of failed requests (400-599); alone, every request fails with it.
    #[arg(long, value_name = "CODE", value_parser = clap::value_parser!(u16).range(400..=599))]
    status: Option<u16>,
    /// Delay every answer by this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    delay_ms: u64,
    /// Send `Retry-After: SECS` with failed answers.
    #[arg(long, value_name = "SECS")]
    retry_after: Option<u32>,
    /// Answer every request with `Connection: close` (devices must reconnect).
    #[arg(long)]
    close_connections: bool,
    /// Seed of --fail-rate (the same seed fails the same requests).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print only the startup lines, not one line per request.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Gateway: relay every accepted event to this PostHog host (https://us.i.posthog.com or
    /// https://eu.i.posthog.com), with the device's project key, over HTTPS with gzip; failed
    /// batches are retried until delivered, from a bounded in-memory spool.
    #[arg(long, value_name = "URL")]
    forward: Option<String>,
    /// Bytes of events spooled per project key while the upstream is unreachable (the oldest
    /// are dropped, and counted, beyond it).
    #[arg(long, value_name = "BYTES", default_value_t = posthog_embedded_devtools::forward::DEFAULT_SPOOL_BYTES)]
    forward_spool_bytes: usize,
    /// Trust this root certificate (PEM or DER file) for the upstream instead of the webpki
    /// roots (a self-hosted PostHog behind a private CA).
    #[arg(long, value_name = "FILE", requires = "forward")]
    forward_root_cert: Option<PathBuf>,
    /// Serve HTTPS: a private CA is generated at start-up and signs the server's certificate
    /// (ECDSA P-256, TLS 1.3 and 1.2); the CA certificate is written to --tls-ca-out for the
    /// device to trust.
    #[arg(long)]
    tls: bool,
    /// Names the server certificate holds besides `localhost`, `127.0.0.1` and the bind
    /// address (a host name the device connects to), repeatable.
    #[arg(long, value_name = "NAME", requires = "tls")]
    tls_name: Vec<String>,
    /// Where the CA certificate (DER) is written.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "posthog-embedded-local-ca.der",
        requires = "tls"
    )]
    tls_ca_out: PathBuf,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0.0 and 1.0"))
    }
}

pub(crate) fn run(a: &ServeArgs) -> Outcome {
    let faults = Faults::none()
        .fail_rate(a.fail_rate)
        .status(a.status)
        .delay(Duration::from_millis(a.delay_ms))
        .retry_after(a.retry_after)
        .close_connections(a.close_connections)
        .seed(a.seed);
    let mut config = ServerConfig::default()
        .bind(SocketAddr::new(a.bind, a.port))
        .faults(faults);
    if let Some(d) = &a.definitions {
        config = config.definitions(d);
    }
    if let Some(out) = &a.events_out {
        config = config.events_out(out);
    }
    if !a.quiet {
        config = config.log(|line| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        });
    }
    let forwarder = match &a.forward {
        Some(url) => {
            let mut fc = ForwardConfig::new(url.clone()).spool_bytes(a.forward_spool_bytes);
            if let Some(path) = &a.forward_root_cert {
                fc = fc.root_certificate(read_certificate(path)?);
            }
            let f = Arc::new(Forwarder::new(fc).map_err(|e| Failure::input(e.to_string()))?);
            config = config.forward(Arc::clone(&f));
            Some(f)
        }
        None => None,
    };
    let pki = if a.tls {
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        if !a.bind.is_unspecified() && !names.contains(&a.bind.to_string()) {
            names.push(a.bind.to_string());
        }
        for n in &a.tls_name {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        let pki = generate(&names).map_err(|e| Failure::input(e.to_string()))?;
        std::fs::write(&a.tls_ca_out, &pki.ca_der)
            .map_err(|e| Failure::input(format!("{}: {e}", a.tls_ca_out.display())))?;
        config = config.tls(Arc::clone(&pki.server));
        Some(pki)
    } else {
        None
    };
    let server = LocalServer::start(config).map_err(|e| Failure::input(e.to_string()))?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {}", server.url());
        if !a.bind.is_loopback() {
            let _ = writeln!(
                out,
                "warning: {} is not a loopback address: anyone who can reach it can send events and read the flag definitions",
                a.bind
            );
        }
        match &a.definitions {
            Some(d) => {
                let _ = writeln!(out, "flag definitions: {}", d.display());
            }
            None => {
                let _ = writeln!(
                    out,
                    "flag definitions: none (--definitions FILE to serve and evaluate flags)"
                );
            }
        }
        if let Some(p) = &a.events_out {
            let _ = writeln!(out, "events appended to {}", p.display());
        }
        if let Some(pki) = &pki {
            let _ = writeln!(
                out,
                "TLS: certificate for {}; its CA ({} bytes, DER) written to {}: the root the device trusts",
                pki.names.join(", "),
                pki.ca_der.len(),
                a.tls_ca_out.display()
            );
        }
        if let Some(f) = &forwarder {
            let _ = writeln!(
                out,
                "forwarding accepted events to {} (spool {} bytes per project key)",
                f.upstream(),
                a.forward_spool_bytes
            );
        }
        let described = describe(&faults);
        if faults.any() && !described.is_empty() {
            let _ = writeln!(out, "faults: {described}");
        }
        let _ = writeln!(out, "press Ctrl-C to stop");
        let _ = out.flush();
    }
    // Serve until Ctrl-C or SIGTERM; every request flushes its own output. A gateway prints
    // its totals whenever they change, and delivers its spool before it exits.
    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .map_err(|e| Failure::input(format!("cannot handle Ctrl-C: {e}")))?;
    let mut last = None;
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
        stop_rx.recv_timeout(Duration::from_secs(1))
    {
        if let Some(f) = &forwarder {
            let stats = f.stats();
            if last != Some(stats) {
                last = Some(stats);
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", describe_forward(f));
                let _ = out.flush();
            }
        }
    }
    server.stop();
    let Some(f) = forwarder else {
        return Ok(());
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "stopping: delivering the spool to {} (up to {} s)",
            f.upstream(),
            SHUTDOWN_DRAIN.as_secs()
        );
        let _ = out.flush();
    }
    let left = f.shutdown(SHUTDOWN_DRAIN);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", describe_forward(&f));
    let _ = out.flush();
    drop(out);
    if left > 0 {
        return Err(Failure::Negative(format!(
            "{left} events were not delivered and are lost"
        )));
    }
    Ok(())
}

/// How long a stopping gateway keeps delivering its spool.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(10);

/// A certificate file: DER, or the first `CERTIFICATE` block of a PEM file.
fn read_certificate(path: &std::path::Path) -> Result<Vec<u8>, Failure> {
    let bytes =
        std::fs::read(path).map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Ok(bytes);
    };
    let Some(start) = text.find("-----BEGIN CERTIFICATE-----") else {
        return Ok(bytes);
    };
    let body = &text[start + "-----BEGIN CERTIFICATE-----".len()..];
    let end = body
        .find("-----END CERTIFICATE-----")
        .ok_or_else(|| Failure::input(format!("{}: unterminated PEM", path.display())))?;
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    base64_decode(&b64).ok_or_else(|| Failure::input(format!("{}: bad base64", path.display())))
}

/// Standard base64 (with `=` padding) to bytes.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let n = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        out.extend_from_slice(&acc.to_be_bytes()[1..=n]);
    }
    Some(out)
}

fn describe(f: &Faults) -> String {
    let mut parts = Vec::new();
    let status = f.status.unwrap_or(503);
    match f.fail_rate {
        Some(r) if r > 0.0 => parts.push(format!("{:.0}% of requests answer {status}", r * 100.0)),
        None if f.status.is_some() => parts.push(format!("every request answers {status}")),
        _ => {}
    }
    if let Some(s) = f.retry_after {
        parts.push(format!("Retry-After: {s}"));
    }
    if !f.delay.is_zero() {
        parts.push(format!("{} ms delay", f.delay.as_millis()));
    }
    if f.close_connections {
        parts.push("Connection: close".into());
    }
    parts.join(", ")
}
