//! A tiny HTTP endpoint for probes and scrapers: `GET /health` answers
//! `ok`, `GET /metrics` the server's gauges in Prometheus text format.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::error::Result;
use super::service::ServerState;

/// Largest request head read, in bytes.
const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;

/// Bind `address` and answer requests in the background.
pub async fn spawn(address: SocketAddr, state: Arc<ServerState>) -> Result<()> {
    let listener = TcpListener::bind(address).await?;
    println!(
        "Health and metrics on http://{}/health",
        listener.local_addr()?
    );
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream, state.clone()));
        }
    });
    Ok(())
}

async fn answer(mut stream: tokio::net::TcpStream, state: Arc<ServerState>) {
    let mut head = vec![0u8; REQUEST_HEAD_BYTES_MAX];
    let Ok(n) = stream.read(&mut head).await else {
        return;
    };
    let request = String::from_utf8_lossy(&head[..n]);
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = match path {
        "/health" => ("200 OK", "ok\n".to_string()),
        "/metrics" => ("200 OK", metrics(&state)),
        _ => ("404 Not Found", "not found\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
}

fn metrics(state: &ServerState) -> String {
    let (running, waiting) = state.queries.running_and_waiting();
    format!(
        "# TYPE driftdb_sessions gauge\ndriftdb_sessions {}\n\
         # TYPE driftdb_running_queries gauge\ndriftdb_running_queries {}\n\
         # TYPE driftdb_waiting_results gauge\ndriftdb_waiting_results {}\n\
         # TYPE driftdb_visible_seq gauge\ndriftdb_visible_seq {}\n",
        state.sessions.len(),
        running,
        waiting,
        state.db.visible_seq()
    )
}
