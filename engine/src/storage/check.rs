//! `driftdb check`: verify everything a local database stores, without
//! opening it and without changing a byte.
//!
//! - every log segment: header and format version, every frame's checksum,
//!   commits contiguous across segments; a torn tail of the last segment
//!   is a note (opening cuts it), any other bad frame is damage;
//! - every checkpoint: envelope, version, checksum, JSON; the log must
//!   reach back to the newest readable one;
//! - every data file any readable checkpoint names: present, its recorded
//!   length and xxh64;
//! - `sequences.json`.
//!
//! It takes no lock: run it on a stopped database, or expect a persist
//! running beside it to show up as a missing file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

use crate::error::{Error, Result};
use crate::log::segment::{SegmentEnd, scan_segment};
use crate::log::{LOG_DIR, list_segments};
use crate::storage::DataFile;
use crate::storage::checkpoint::{CHECKPOINT_DIR, decode_checkpoint, list_checkpoints};
use crate::storage::verify::{Expected, verify_file};

/// How bad one finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Ok,
    /// Worth knowing, not damage (a torn tail that opening will cut, a file without a checksum).
    Note,
    /// Something stored is wrong or missing.
    Damage,
}

/// One thing the check found.
#[derive(Debug, Clone)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
}

/// Everything the check found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// Whether anything stored is damaged.
    pub fn is_damaged(&self) -> bool {
        self.damage_count() > 0
    }

    pub fn damage_count(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Damage)
            .count()
    }

    fn push(&mut self, severity: Severity, message: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            message: message.into(),
        });
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            let tag = match finding.severity {
                Severity::Ok => "ok",
                Severity::Note => "note",
                Severity::Damage => "DAMAGE",
            };
            writeln!(f, "{tag:>6}  {}", finding.message)?;
        }
        match self.damage_count() {
            0 => writeln!(f, "no damage found"),
            n => writeln!(f, "{n} damaged item(s) found"),
        }
    }
}

/// Check the database in the local folder `root`.
pub async fn check_database(root: &Path) -> Result<CheckReport> {
    if !root.is_dir() {
        return Err(Error::InvalidArgument {
            message: format!("{} is not a database folder", root.display()),
        });
    }
    let mut report = CheckReport::default();
    if root.join(crate::backup::RESTORE_MARKER).exists() {
        report.push(
            Severity::Damage,
            format!(
                "{}: an unfinished restore ({} is there); restore again into an empty folder",
                root.display(),
                crate::backup::RESTORE_MARKER
            ),
        );
    }
    let log_dir = root.join(LOG_DIR);
    let log = tokio::task::spawn_blocking(move || check_log(&log_dir))
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
    report.findings.extend(log.findings);
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(root)?);
    let files = check_checkpoints(root, store.as_ref(), log.first_seq, &mut report).await?;
    check_data_files(store.as_ref(), &files, &mut report).await?;
    check_sequences(root, &mut report);
    Ok(report)
}

/// What the log check found, and the first commit the log holds.
struct LogCheck {
    findings: Vec<Finding>,
    first_seq: Option<u64>,
}

fn check_log(dir: &Path) -> Result<LogCheck> {
    let mut report = CheckReport::default();
    let segments = list_segments(dir)?;
    let mut first_seq = None;
    let mut last_seq: Option<u64> = None;
    for (index, (segment_seq, path)) in segments.iter().enumerate() {
        let file = path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                report.push(Severity::Damage, format!("{file}: cannot be read: {e}"));
                continue;
            }
        };
        let scan = match scan_segment(&file, *segment_seq, &bytes) {
            Ok(scan) => scan,
            Err(e) => {
                report.push(Severity::Damage, e.to_string());
                continue;
            }
        };
        for record in &scan.records {
            let seq = record.header.seq;
            if let Some(last) = last_seq
                && seq != last + 1
            {
                report.push(
                    Severity::Damage,
                    format!("{file}: commit {seq} follows commit {last} (a gap in the log)"),
                );
            }
            first_seq.get_or_insert(seq);
            last_seq = Some(seq);
        }
        let is_last = index + 1 == segments.len();
        let range = match (scan.records.first(), scan.records.last()) {
            (Some(a), Some(b)) => format!("commits {}..={}", a.header.seq, b.header.seq),
            _ => "no commits".to_string(),
        };
        match scan.end {
            SegmentEnd::Clean => report.push(
                Severity::Ok,
                format!("{file}: format {}, {range}", scan.version),
            ),
            SegmentEnd::Torn { offset, detail } if is_last => report.push(
                Severity::Note,
                format!(
                    "{file}: {range}, then a torn tail of {} bytes at byte {offset} ({detail}); opening cuts it",
                    scan.len - offset
                ),
            ),
            SegmentEnd::Torn { offset, detail } | SegmentEnd::Corrupt { offset, detail } => {
                report.push(
                    Severity::Damage,
                    format!("{file}: corrupt at byte {offset}: {detail} (after {range})"),
                )
            }
        }
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains(".log.torn-") {
            report.push(
                Severity::Note,
                format!(
                    "{}: bytes cut off a torn log tail, kept for inspection",
                    entry.path().display()
                ),
            );
        }
    }
    Ok(LogCheck {
        findings: report.findings,
        first_seq,
    })
}

/// Check every checkpoint; return the data files the readable ones name.
async fn check_checkpoints(
    root: &Path,
    store: &dyn ObjectStore,
    log_first_seq: Option<u64>,
    report: &mut CheckReport,
) -> Result<BTreeMap<String, DataFile>> {
    let mut files = BTreeMap::new();
    let mut newest_readable = None;
    let mut unreadable: Vec<(u64, String)> = Vec::new();
    let checkpoints = list_checkpoints(store).await?;
    if checkpoints.is_empty() {
        report.push(Severity::Ok, format!("{CHECKPOINT_DIR}: no checkpoints"));
    }
    for (seq, path) in checkpoints {
        let file = root.join(path.as_ref()).display().to_string();
        let decoded = std::fs::read(root.join(path.as_ref()))
            .map_err(|e| format!("{file}: cannot be read: {e}"))
            .and_then(|bytes| decode_checkpoint(&file, seq, &bytes).map_err(|e| e.to_string()));
        match decoded {
            Ok(checkpoint) => {
                let count: usize = checkpoint
                    .tables
                    .iter()
                    .map(|t| t.all_files().count())
                    .sum();
                report.push(
                    Severity::Ok,
                    format!("{file}: checkpoint {seq}, {count} data file(s)"),
                );
                for file in checkpoint
                    .tables
                    .iter()
                    .flat_map(|t| t.all_files())
                    .cloned()
                {
                    files.insert(file.path.clone(), file);
                }
                newest_readable = Some(seq);
            }
            Err(reason) => unreadable.push((seq, reason)),
        }
    }
    // Opening uses the newest readable checkpoint; an unreadable older one is never needed.
    for (seq, reason) in unreadable {
        match newest_readable {
            Some(newest) if seq < newest => report.push(
                Severity::Note,
                format!("unreadable checkpoint {seq}, superseded by checkpoint {newest}: {reason}"),
            ),
            _ => report.push(
                Severity::Damage,
                format!("unreadable checkpoint {seq} (opening falls back past it): {reason}"),
            ),
        }
    }
    // Opening replays the log after the newest readable checkpoint.
    let start = newest_readable.map_or(1, |seq| seq + 1);
    if let Some(first) = log_first_seq
        && first > start
    {
        report.push(
            Severity::Damage,
            format!("the log starts at commit {first}, but opening needs it from commit {start}"),
        );
    }
    Ok(files)
}

async fn check_data_files(
    store: &dyn ObjectStore,
    files: &BTreeMap<String, DataFile>,
    report: &mut CheckReport,
) -> Result<()> {
    let mut good = 0usize;
    for file in files.values() {
        let location = object_store::path::Path::from(file.path.as_str());
        match verify_file(store, &location, Expected::of(file)).await {
            Ok(Ok(())) if file.xxh64.is_none() => report.push(
                Severity::Note,
                format!(
                    "{}: length right; no checksum recorded (written before format 1)",
                    file.path
                ),
            ),
            Ok(Ok(())) => good += 1,
            Ok(Err(detail)) => report.push(Severity::Damage, format!("{}: {detail}", file.path)),
            Err(e) => report.push(
                Severity::Damage,
                format!("{}: cannot be read: {e}", file.path),
            ),
        }
    }
    report.push(
        Severity::Ok,
        format!("{good} data file(s) match their length and xxh64"),
    );
    Ok(())
}

fn check_sequences(root: &Path, report: &mut CheckReport) {
    let path = root.join(crate::sequences::POSITIONS_FILE);
    if !path.exists() {
        return;
    }
    match crate::sequences::read_reservations(&path) {
        Ok(_) => report.push(Severity::Ok, format!("{}: readable", path.display())),
        Err(e) => report.push(Severity::Damage, e.to_string()),
    }
}
