//! Fuzz targets for everything a client or a file can feed the engine:
//! the SQL front end ([`sql`]), the commit-log frame decoder and recovery
//! from a damaged log ([`log_frames`]), and the checkpoint reader
//! ([`checkpoints`]).
//!
//! cargo-fuzz needs a nightly toolchain, so the targets are proptest
//! runners with large case counts: random and mutated inputs, each run
//! under the assertions of its target (no panic, no hang, no allocation
//! sized by an unchecked length, every error with its SQLSTATE).
//!
//! Case counts: each target has a CI count (`*_CASES_CI`), sized so the
//! whole module stays under a minute in a debug build. The environment
//! variable `DRIFTDB_FUZZ_CASES` multiplies every count (`DRIFTDB_FUZZ_CASES=100`
//! runs a hundred times as many); `scripts/fuzz.sh` is the long run. Each
//! run prints its seed; `PROPTEST_RNG_SEED=<seed>` replays it.

mod checkpoints;
mod log_frames;
mod sql;

use std::time::Instant;

use proptest::test_runner::{Config, RngSeed, TestRunner};

/// The environment variable that multiplies every target's case count.
pub const CASES_ENV: &str = "DRIFTDB_FUZZ_CASES";

/// Shrinking steps after a failure (each SQL step runs a statement).
const SHRINK_ITERS_MAX: u32 = 256;

/// `ci` cases times the multiplier in [`CASES_ENV`] (1 when unset).
pub fn cases(ci: u32) -> u32 {
    let multiplier = std::env::var(CASES_ENV)
        .ok()
        .map(|v| {
            v.trim()
                .parse::<u32>()
                .unwrap_or_else(|_| panic!("{CASES_ENV} must be a whole number, not {v:?}"))
        })
        .unwrap_or(1);
    ci.saturating_mul(multiplier)
}

/// A runner of `cases` cases for `target`, seeded from `PROPTEST_RNG_SEED`
/// or at random; the seed is printed so a failure can be replayed.
pub fn runner(target: &str, cases: u32) -> TestRunner {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("fuzz {target}: {cases} cases, seed {seed} (replay with PROPTEST_RNG_SEED={seed})");
    TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: SHRINK_ITERS_MAX,
        ..Config::default()
    })
}

/// Runs `f` and prints how long `target` took.
pub fn timed<T>(target: &str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    eprintln!("fuzz {target}: done in {:.1?}", started.elapsed());
    out
}

/// Unwrap a proptest run, printing the failing input in full.
pub fn passed<T: std::fmt::Debug>(
    target: &str,
    result: Result<(), proptest::test_runner::TestError<T>>,
) {
    if let Err(e) = result {
        panic!("fuzz {target} found a failure: {e}");
    }
}

/// Write `new` over `bytes` from `at`, as far as `bytes` goes.
pub fn overwrite(bytes: &mut [u8], at: usize, new: &[u8]) {
    if at >= bytes.len() {
        return;
    }
    let end = (at + new.len()).min(bytes.len());
    bytes[at..end].copy_from_slice(&new[..end - at]);
}

/// Copy the folder `from` to `to` (a database left open: as after a crash).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
