//! One send cycle of a client over any [`Transport`], for drivers and hand-written loops.

use crate::client::Client;
use crate::net::transport::Transport;
use crate::time::Clock;

/// One cycle: if the client has a request due, send it over `transport` and report the answer.
/// Returns whether a request was sent; when not, sleep until [`Client::poll_timeout`] (or a
/// capture) before calling again. `tx_buf` holds request bodies (its size caps a batch), `body`
/// holds response bodies (definitions).
pub async fn send_due<T, K>(
    client: &mut Client<'_>,
    transport: &mut T,
    clock: &K,
    tx_buf: &mut [u8],
    body: &mut [u8],
) -> bool
where
    T: Transport,
    K: Clock,
{
    // Connect first (see `Transport::prepare`), when something is due.
    let due = client
        .poll_timeout()
        .is_some_and(|at| at <= clock.read().mono);
    let prepared = if due {
        transport.prepare().await
    } else {
        Ok(())
    };
    let outcome = {
        let Some(tx) = client.poll_transmit(clock.read(), tx_buf) else {
            return false;
        };
        match prepared {
            Ok(()) => transport.send(&tx, body).await,
            Err(e) => Err(e),
        }
    };
    let now = clock.read();
    match outcome {
        Ok(reply) => {
            let b = body.get(..reply.body_len).unwrap_or_default();
            client.handle_response(now, &reply.info(), b);
        }
        Err(e) => client.handle_transport_error(now, e),
    }
    true
}
