//! Fault injection for object storage.
//!
//! [`FaultyStore`] wraps the object store a database reads data files and
//! checkpoints through (and, on `memory://`, writes them through) and fails
//! a chosen fraction of requests, after an added latency, the way a flaky
//! network or an overloaded S3 endpoint does: a request fails before it
//! does anything, or a read fails after its first chunk. Failures are drawn
//! from a seeded generator, so a failing run can be replayed from its seed.
//!
//! Tests open a database over it ([`Location::with_faults`]) and check that
//! a workload of commits, persists and reads loses nothing acknowledged,
//! returns no wrong answer and reports every failure with a SQLSTATE.
//!
//! [`Location::with_faults`]: crate::storage::location::Location::with_faults

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use parking_lot::Mutex;

/// Which requests fail, and how slow every request is.
#[derive(Debug, Clone, Copy)]
pub struct FaultPlan {
    /// Fraction of requests that fail, from 0.0 to 1.0.
    pub failure_rate: f64,
    /// Added to every request before it runs.
    pub latency: Duration,
    /// Seed of the generator that picks the failing requests.
    pub seed: u64,
    /// Fail only requests of this kind (`"get"`, `"put"`, `"list"`, …).
    pub only: Option<&'static str>,
}

/// An object store that fails a fraction of requests (see the module page).
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    plan: FaultPlan,
    state: Arc<Mutex<u64>>,
    enabled: AtomicBool,
    requests: AtomicU64,
    injected: Arc<AtomicU64>,
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStore")
            .field("plan", &self.plan)
            .field("injected", &self.injected())
            .finish()
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faulty({})", self.inner)
    }
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>, plan: FaultPlan) -> Self {
        Self {
            inner,
            plan,
            state: Arc::new(Mutex::new(plan.seed | 1)),
            enabled: AtomicBool::new(true),
            requests: AtomicU64::new(0),
            injected: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Turn fault injection on or off (latency stays).
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Release);
    }

    /// Requests seen so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Acquire)
    }

    /// Failures injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Acquire)
    }

    /// Wait out the latency, then fail the request `what` if it is drawn.
    async fn admit(&self, what: &str, location: Option<&Path>) -> object_store::Result<()> {
        self.requests.fetch_add(1, Ordering::AcqRel);
        if !self.plan.latency.is_zero() {
            tokio::time::sleep(self.plan.latency).await;
        }
        if self.draw(what) {
            return Err(injected(&self.injected, what, location));
        }
        Ok(())
    }

    /// Whether the next request, of kind `what`, fails.
    fn draw(&self, what: &str) -> bool {
        self.enabled.load(Ordering::Acquire)
            && self.plan.only.is_none_or(|only| only == what)
            && next_unit(&self.state) < self.plan.failure_rate
    }
}

/// The next number in [0, 1) from a xorshift64* generator.
fn next_unit(state: &Mutex<u64>) -> f64 {
    let mut x = state.lock();
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    let value = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
    (value >> 11) as f64 / (1u64 << 53) as f64
}

fn injected(count: &AtomicU64, what: &str, location: Option<&Path>) -> object_store::Error {
    count.fetch_add(1, Ordering::AcqRel);
    let at = location.map(|l| format!(" of {l}")).unwrap_or_default();
    object_store::Error::Generic {
        store: "FaultyStore",
        source: format!("injected fault: {what}{at} failed").into(),
    }
}

#[async_trait::async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.admit("put", Some(location)).await?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.admit("multipart put", Some(location)).await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.admit("get", Some(location)).await?;
        let mut result = self.inner.get_opts(location, options).await?;
        // A streamed read may also break off after its first chunk.
        if self.draw("read")
            && let GetResultPayload::Stream(stream) = result.payload
        {
            let (count, path) = (self.injected.clone(), location.clone());
            let broken = stream.take(1).chain(futures::stream::once(async move {
                Err(injected(&count, "read", Some(&path)))
            }));
            result.payload = GetResultPayload::Stream(broken.boxed());
        }
        Ok(result)
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.admit("ranged get", Some(location)).await?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        if self.draw("list") {
            let error = injected(&self.injected, "list", prefix);
            return futures::stream::once(async move { Err(error) }).boxed();
        }
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.admit("list", prefix).await?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.admit("copy", Some(from)).await?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.admit("rename", Some(from)).await?;
        self.inner.rename_opts(from, to, options).await
    }
}
