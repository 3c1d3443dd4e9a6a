//! `serve`: the local PostHog-compatible server.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use posthog_embedded_devtools::server::{Faults, LocalServer, ServerConfig};

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
        let described = describe(&faults);
        if faults.any() && !described.is_empty() {
            let _ = writeln!(out, "faults: {described}");
        }
        let _ = writeln!(out, "press Ctrl-C to stop");
        let _ = out.flush();
    }
    // Serve until the process is stopped; every request flushes its own output.
    loop {
        std::thread::park();
    }
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
