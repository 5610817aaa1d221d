//! Decoding a client's Arrow IPC data without letting it crash a call.
//! arrow-ipc 59 panics on some malformed messages instead of failing: a
//! buffer offset past the message body (an unchecked slice), a field of
//! type NONE or an impossible width (`unimplemented!`, `panic!`). Such a
//! panic is the client's malformed request, not a server fault: [`guarded`]
//! turns it into 08P01 (InvalidArgument), and the panic hook installed by
//! [`install_panic_hook`] logs it as a refused request (WARN) instead of as
//! a crash. Panics anywhere else are reported as before.

use std::cell::Cell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::FutureExt;

use super::error::{Result, ServerError};

thread_local! {
    /// Whether this thread is inside [`guarded`] client data decoding.
    static DECODING: Cell<bool> = const { Cell::new(false) };
}

/// Route panics raised while decoding client data to a WARN line; every
/// other panic goes to the hook that was installed before.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !DECODING.with(Cell::get) {
            return previous(info);
        }
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        tracing::warn!(
            "refused malformed Arrow IPC data from a client: {} ({location})",
            panic_text(info.payload())
        );
    }));
}

/// Run `decode` (a step of decoding a client's Arrow IPC data); a panic in
/// it is malformed data, 08P01.
pub async fn guarded<T>(decode: impl Future<Output = Result<T>>) -> Result<T> {
    let quiet = Quiet {
        inner: Box::pin(decode),
    };
    match AssertUnwindSafe(quiet).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => Err(ServerError::BadRequest(format!(
            "malformed Arrow IPC data: {}",
            panic_text(panic.as_ref())
        ))),
    }
}

/// Polls its future with [`DECODING`] set on the polling thread.
struct Quiet<F> {
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Quiet<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let _decoding = Flag(DECODING.with(|d| d.replace(true)));
        self.inner.as_mut().poll(cx)
    }
}

/// Puts [`DECODING`] back as it was, also when a panic unwinds.
struct Flag(bool);

impl Drop for Flag {
    fn drop(&mut self) {
        DECODING.with(|d| d.set(self.0));
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("the decoder panicked")
}
