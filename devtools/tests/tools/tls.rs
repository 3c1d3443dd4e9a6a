//! `serve --tls`: the local server over HTTPS with a private CA, so a client's real TLS path
//! (certificate verification included) runs against it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use posthog_embedded::adapters::std::{StdClient, StdConfig};
use posthog_embedded_devtools::server::{LocalServer, ServerConfig};
use posthog_embedded_devtools::tls::generate;

use super::cli::Serve;

fn client(host: &str, root: Option<Vec<u8>>) -> StdClient {
    let mut c = StdConfig::new("phc_tls_test", 7)
        .host(host)
        .proxy_from_env(false)
        .flush_at(100)
        .flush_interval(Duration::from_secs(60))
        .request_timeout(Duration::from_secs(5));
    if let Some(der) = root {
        c = c.root_certificate(der);
    }
    StdClient::new(c).unwrap()
}

#[test]
fn https_with_the_generated_ca_delivers_and_without_it_nothing_is_sent() {
    let pki = generate(&["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&lines);
    let server = LocalServer::start(
        ServerConfig::default()
            .tls(Arc::clone(&pki.server))
            .log(move |l| sink.lock().unwrap().push(l.to_owned())),
    )
    .unwrap();
    assert!(server.url().starts_with("https://"));
    let host = format!("https://localhost:{}", server.addr().port());

    // Not trusting the local CA (the webpki roots only): the handshake fails, nothing is
    // delivered, the event stays queued.
    let untrusted = client(&host, None);
    untrusted
        .capture("door opened", "device-1", |_| Ok(()))
        .unwrap();
    let refused = || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("TLS handshake from"))
    };
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while !refused() && std::time::Instant::now() < until {
        untrusted.flush(Duration::from_millis(200));
    }
    assert!(refused(), "{:?}", lines.lock().unwrap());
    assert_eq!(untrusted.pending(), 1);
    assert_eq!(untrusted.stats().sent, 0);
    assert_eq!(server.total_events(), 0);

    // Trusting it: delivered over TLS.
    let trusted = client(&host, Some(pki.ca_der.clone()));
    trusted
        .capture("door opened", "device-1", |_| Ok(()))
        .unwrap();
    let r = trusted.flush(Duration::from_secs(10));
    assert_eq!((r.sent, r.pending), (1, 0));
    assert_eq!(server.events().len(), 1);
    assert_eq!(server.events()[0].name(), "door opened");
}

#[test]
fn serve_tls_writes_the_ca_for_the_device() {
    let dir = std::env::temp_dir().join(format!("ph-serve-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.der");
    let ca_arg = ca.to_string_lossy().into_owned();
    let serve = Serve::start(&[
        "--tls",
        "--tls-name",
        "ingest.local",
        "--tls-ca-out",
        &ca_arg,
    ]);
    assert!(
        serve.url().starts_with("https://127.0.0.1:"),
        "{}",
        serve.url()
    );
    assert!(
        serve.wait_log("certificate for localhost, 127.0.0.1, ingest.local"),
        "{}",
        serve.log()
    );
    let der = std::fs::read(&ca).unwrap();
    let trusted = client(serve.url(), Some(der));
    trusted.capture("boot", "device-2", |_| Ok(())).unwrap();
    let r = trusted.flush(Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!((r.sent, r.pending), (1, 0));
}
