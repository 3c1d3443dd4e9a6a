//! `capture` and `fetch-definitions`: talking to a PostHog (or the local server).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::Args;
use posthog_embedded::adapters::std::{
    normalize_host, os_seed, RecordKind, StdClient, StdConfig, StdFlagStore, UreqTransport,
};
use posthog_embedded::client::{Fate, Method, RequestKind, Transmit, TransportError};
use posthog_embedded_devtools::context::parse_property_arg;
use posthog_embedded_devtools::json::Json;
use serde_json::Value;

use crate::{Failure, Outcome};

#[derive(Args, Debug)]
pub(crate) struct CaptureArgs {
    /// PostHog host: https://us.i.posthog.com, https://eu.i.posthog.com, or a local server
    /// such as http://127.0.0.1:8010.
    #[arg(long, env = "POSTHOG_HOST", value_name = "URL")]
    host: String,
    /// Project API key (phc_…). Never printed.
    #[arg(
        long,
        env = "POSTHOG_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    api_key: String,
    /// The distinct id.
    #[arg(long, value_name = "ID")]
    distinct_id: String,
    /// The event name.
    #[arg(long, value_name = "NAME")]
    event: String,
    /// A property: key=text (always a string) or key:=json.
    #[arg(long = "prop", value_name = "KEY=VALUE")]
    props: Vec<String>,
    /// Give up after this many seconds (retries included; 1 to 86400).
    #[arg(long, value_name = "SECS", default_value_t = 15,
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    timeout: u64,
}

#[derive(Args, Debug)]
pub(crate) struct FetchArgs {
    /// PostHog host (or a local server).
    #[arg(long, env = "POSTHOG_HOST", value_name = "URL")]
    host: String,
    /// Secret key: a project secret key (phs_…) or a personal API key (phx_…). Never printed.
    #[arg(
        long,
        env = "POSTHOG_SECRET_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    secret_key: String,
    /// Project API key (phc_…), sent as `token`. Never printed.
    #[arg(
        long,
        env = "POSTHOG_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    api_key: Option<String>,
    /// Where to write the definitions; the ETag goes to FILE.etag.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: PathBuf,
    /// Download even if FILE.etag says it is current.
    #[arg(long)]
    force: bool,
}

fn props(list: &[String]) -> Result<Vec<(String, Value)>, Failure> {
    list.iter()
        .map(|p| parse_property_arg(p).map_err(|e| Failure::input(format!("--prop {e}"))))
        .collect()
}

/// One `/batch/` attempt: its number, its outcome and how long it took.
type Attempt = (u32, Result<u16, TransportError>, Duration);

fn describe(result: &Result<u16, TransportError>) -> String {
    match result {
        Ok(s) => s.to_string(),
        Err(e) => e.to_string(),
    }
}

pub(crate) fn run_capture(a: &CaptureArgs) -> Outcome {
    let props = props(&a.props)?;
    if a.event.is_empty() {
        return Err(Failure::input("--event is empty"));
    }
    let host = normalize_host(&a.host).map_err(|e| Failure::input(format!("--host: {e}")))?;
    let client = StdClient::new(
        StdConfig::new(a.api_key.clone(), os_seed())
            .host(host.clone())
            .flush_at(1),
    )
    .map_err(|e| Failure::input(e.to_string()))?;
    let attempts: Arc<Mutex<Vec<Attempt>>> = Arc::default();
    let seen = Arc::clone(&attempts);
    client.on_request(Some(Box::new(move |r| {
        if matches!(r.kind, RecordKind::Batch { .. }) {
            seen.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((r.attempt, r.result, r.elapsed));
        }
    })));
    let mut uuid = None;
    let fate = client
        .immediate(Duration::from_secs(a.timeout), |c, now| {
            let u = c.capture(
                now,
                &a.event,
                &a.distinct_id,
                &posthog_embedded::capture::EventOptions::new(),
                |o| {
                    for (k, v) in &props {
                        o.prop(k, Json(v))?;
                    }
                    Ok(())
                },
            )?;
            uuid = Some(u);
            Ok(u)
        })
        .map_err(|e| Failure::input(format!("the event cannot be encoded: {e}")))?;
    client.shutdown(Duration::from_millis(200));
    let attempts = attempts
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let tries: Vec<String> = attempts
        .iter()
        .map(|(_, r, t)| format!("{} ({} ms)", describe(r), t.as_millis()))
        .collect();
    let mut text = [0u8; posthog_embedded::capture::UUID_LEN];
    let uuid = uuid.map_or("?", |u| u.encode(&mut text)).to_owned();
    match fate {
        Fate::Delivered => {
            println!(
                "delivered `{}` for {} (uuid {uuid}) to {host}: {}",
                a.event,
                a.distinct_id,
                tries.join(", then ")
            );
            Ok(())
        }
        Fate::Dropped => Err(Failure::Negative(format!(
            "not delivered: {host} answered {} and the event was dropped",
            if tries.is_empty() {
                "nothing".to_owned()
            } else {
                tries.join(", then ")
            }
        ))),
        _ => Err(Failure::Negative(format!(
            "not delivered within {} s: {}",
            a.timeout,
            if tries.is_empty() {
                "no answer".to_owned()
            } else {
                tries.join(", then ")
            }
        ))),
    }
}

fn etag_path(output: &Path) -> PathBuf {
    let mut p = output.as_os_str().to_owned();
    p.push(".etag");
    PathBuf::from(p)
}

fn push_query_value(out: &mut String, v: &str) {
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

pub(crate) fn run_fetch(a: &FetchArgs) -> Outcome {
    let host = normalize_host(&a.host).map_err(|e| Failure::input(format!("--host: {e}")))?;
    if a.secret_key.trim().is_empty() {
        return Err(Failure::input("--secret-key is empty"));
    }
    let config =
        StdConfig::new(a.api_key.clone().unwrap_or_default(), os_seed()).host(host.clone());
    let transport = UreqTransport::new(&config).map_err(|e| Failure::input(e.to_string()))?;
    let mut path = String::from("/flags/definitions?");
    if let Some(token) = &a.api_key {
        path.push_str("token=");
        push_query_value(&mut path, token);
        path.push('&');
    }
    path.push_str("send_cohorts");
    let path = heapless::String::try_from(path.as_str())
        .map_err(|_| Failure::input("the API key is too long for a request path"))?;
    let etag_file = etag_path(&a.output);
    let old_etag = if a.force || !a.output.exists() {
        None
    } else {
        std::fs::read_to_string(&etag_file)
            .ok()
            .map(|s| s.trim().to_owned())
    };
    let tx = Transmit::from_parts(
        RequestKind::Definitions,
        Method::Get,
        path,
        &[],
        Some(a.secret_key.as_str()),
        old_etag.as_deref().filter(|e| !e.is_empty()),
    );
    let resp = transport
        .send(&tx)
        .map_err(|e| Failure::Negative(format!("{host}: {e}")))?;
    match resp.status {
        304 => {
            // The server may name the same document by a new ETag: keep that one.
            let etag = match resp.etag.as_deref().filter(|t| !t.is_empty()) {
                Some(new) if Some(new) != old_etag.as_deref() => {
                    write_atomically(&etag_file, new.as_bytes())?;
                    new.to_owned()
                }
                _ => old_etag.unwrap_or_default(),
            };
            println!("{} is up to date (ETag {etag})", a.output.display());
            Ok(())
        }
        200..=299 => {
            // Parsed and sized as a device would, without a store (so a document larger than
            // this tool's own store is still accepted).
            let r = StdFlagStore::requirements(&resp.body).map_err(|e| {
                Failure::Negative(format!(
                    "{host} sent definitions this SDK cannot use ({e}); {} left unchanged",
                    a.output.display()
                ))
            })?;
            write_atomically(&a.output, &resp.body)?;
            match &resp.etag {
                Some(tag) => write_atomically(&etag_file, tag.as_bytes())?,
                None => {
                    let _ = std::fs::remove_file(&etag_file);
                }
            }
            println!(
                "saved {} flags ({} bytes) to {}{}",
                r.flags,
                resp.body.len(),
                a.output.display(),
                resp.etag
                    .as_deref()
                    .map(|t| format!(", ETag {t}"))
                    .unwrap_or_default()
            );
            println!(
                "a device flag store needs FlagStore<{}, {}, {}> ({} bytes on Cortex-M)",
                r.flags,
                r.nodes,
                r.bytes,
                r.cortex_m_store_bytes()
            );
            Ok(())
        }
        status => {
            let detail = serde_json::from_slice::<Value>(&resp.body)
                .ok()
                .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            let hint = match status {
                401 => " (check the secret key: phs_… or phx_…)",
                402 => " (the project is over its feature-flag quota)",
                403 => " (the key lacks the feature flag read scope)",
                _ => "",
            };
            Err(Failure::Negative(format!(
                "{host} answered {status}{hint}{}{}",
                if detail.is_empty() { "" } else { ": " },
                detail
            )))
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Failure::input(format!("{}: {e}", path.display())))
}
