//! A tiny HTTP endpoint for probes and scrapers: `GET /health` answers
//! `ok`, `GET /metrics` the server's gauges in Prometheus text format.
//!
//! It keeps answering whatever clients do: an accept error (out of file
//! descriptors, say) is logged and retried after a pause, at most
//! `http_connections_max` connections are served at once (more are closed
//! at once), and a connection that does not send its request head and take
//! the answer within `http_request_timeout` is closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::error::Result;
use super::service::ServerState;

/// Largest request head read, in bytes.
const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;
/// Pause after a failed accept before the next, so a persistent error
/// (no file descriptors left) does not spin.
const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Bind `address` and answer requests in the background.
pub async fn spawn(address: SocketAddr, state: Arc<ServerState>) -> Result<()> {
    let listener = TcpListener::bind(address).await?;
    println!(
        "Health and metrics on http://{}/health",
        listener.local_addr()?
    );
    tokio::spawn(serve(listener, state));
    Ok(())
}

async fn serve(listener: TcpListener, state: Arc<ServerState>) {
    let connections = Arc::new(Semaphore::new(state.limits.http_connections_max));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::warn!(%err, "HTTP admin endpoint: accept failed; retrying");
                tokio::time::sleep(ACCEPT_RETRY_PAUSE).await;
                continue;
            }
        };
        // Over the limit: the connection is dropped (closed) at once.
        let Ok(slot) = connections.clone().try_acquire_owned() else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let timeout = state.limits.http_request_timeout;
            let _ = tokio::time::timeout(timeout, answer(stream, &state)).await;
            drop(slot);
        });
    }
}

/// Read one request head and answer it; the caller bounds the time.
async fn answer(mut stream: TcpStream, state: &ServerState) {
    let Some(head) = read_head(&mut stream).await else {
        return;
    };
    let request = String::from_utf8_lossy(&head);
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = match path {
        "/health" => ("200 OK", "ok\n".to_string()),
        "/metrics" => ("200 OK", metrics(state)),
        _ => ("404 Not Found", "not found\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
}

/// The request head (up to the blank line, at most
/// [`REQUEST_HEAD_BYTES_MAX`]); None when the client closes first.
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < REQUEST_HEAD_BYTES_MAX {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return (!head.is_empty()).then_some(head);
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Some(head)
}

fn metrics(state: &ServerState) -> String {
    let (running, waiting) = state.queries.running_and_waiting();
    format!(
        "# TYPE driftdb_sessions gauge\ndriftdb_sessions {}\n\
         # TYPE driftdb_running_queries gauge\ndriftdb_running_queries {}\n\
         # TYPE driftdb_waiting_results gauge\ndriftdb_waiting_results {}\n\
         # TYPE driftdb_logins_waiting gauge\ndriftdb_logins_waiting {}\n\
         # TYPE driftdb_visible_seq gauge\ndriftdb_visible_seq {}\n",
        state.sessions.len(),
        running,
        waiting,
        state.logins.waiting(),
        state.db.visible_seq()
    )
}
