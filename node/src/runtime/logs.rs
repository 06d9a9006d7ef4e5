//! Bounded files for a guest's stdout and stderr, in the CRI log format.
//!
//! A [`LogFile`] appends records (`log_format.rs`) to a file; each stream
//! writes through its own [`LogStream`] handle ([`LogFile::stdout`],
//! [`LogFile::stderr`]), so both streams share one file, interleaved as
//! `kubectl logs` shows them, and every record says which stream wrote it.
//! When the file would pass its size limit it is renamed to `<path>.1`
//! (replacing an older one) between two records and a new file is started,
//! so one container attempt never holds more than about twice its limit on
//! disk.
//!
//! A failing write (a full disk) drops the output and is logged once; the
//! guest is not told, as a container is not killed when its log disk fills.
//!
//! A [`LogRegistry`] knows which log files still have a writer: a file is
//! registered while any handle on it is alive, so a reader following a log
//! can tell a quiet container from one that has ended.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use jiff::Timestamp;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::log_format::{self, Stream};

/// The most a guest may hand over in one write; with the record framing it
/// bounds how far one record can take a file past its limit.
const MAX_WRITE: usize = 64 * 1024;

/// An append-only, size-bounded log file shared by the streams writing it.
#[derive(Clone)]
pub struct LogFile {
    inner: Arc<Mutex<LogState>>,
}

struct LogState {
    path: PathBuf,
    file: File,
    written: u64,
    max_bytes: u64,
    failed: bool,
    /// Keeps the file registered as written until the last handle is gone.
    _registration: Option<Registration>,
}

impl std::fmt::Debug for LogFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("LogFile")
            .field("path", &state.path)
            .field("max_bytes", &state.max_bytes)
            .finish()
    }
}

impl LogFile {
    /// Opens (creating or appending to) the log at `path`, rotated at
    /// `max_bytes`.
    pub fn create(path: impl Into<PathBuf>, max_bytes: u64) -> std::io::Result<LogFile> {
        Self::open(path.into(), max_bytes, None)
    }

    /// Like [`create`](LogFile::create), and the file counts as written in
    /// `registry` until this handle and all its clones and streams are gone.
    pub fn create_registered(
        path: impl Into<PathBuf>,
        max_bytes: u64,
        registry: &Arc<LogRegistry>,
    ) -> std::io::Result<LogFile> {
        let path = path.into();
        // Registered before the file exists, so that a reader never finds
        // the file of a starting container without its writer.
        let registration = registry.register(&path);
        Self::open(path, max_bytes, Some(registration))
    }

    fn open(
        path: PathBuf,
        max_bytes: u64,
        registration: Option<Registration>,
    ) -> std::io::Result<LogFile> {
        let file = open_append(&path)?;
        let written = file.metadata()?.len();
        Ok(LogFile {
            inner: Arc::new(Mutex::new(LogState {
                path,
                file,
                written,
                max_bytes: max_bytes.max(1),
                failed: false,
                _registration: registration,
            })),
        })
    }

    /// The handle the guest's stdout writes through.
    pub fn stdout(&self) -> LogStream {
        LogStream {
            file: self.clone(),
            stream: Stream::Stdout,
        }
    }

    /// The handle the guest's stderr writes through.
    pub fn stderr(&self) -> LogStream {
        LogStream {
            file: self.clone(),
            stream: Stream::Stderr,
        }
    }

    /// The file being written.
    pub fn path(&self) -> PathBuf {
        self.lock().path.clone()
    }

    /// Where the previous file goes when the current one is rotated.
    pub fn rotated_path(&self) -> PathBuf {
        rotated_path(&self.lock().path)
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding the lock leaves the state usable: at worst a
        // count of written bytes that is off by one write.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes the records of one write of `bytes` to `stream`.
    fn write(&self, stream: Stream, bytes: &[u8]) {
        let mut records = Vec::new();
        log_format::encode(Timestamp::now(), stream, bytes, &mut records);
        let mut state = self.lock();
        if let Err(error) = state.write_records(&records) {
            if !state.failed {
                tracing::warn!(path = %state.path.display(), %error, "dropping guest output");
            }
            state.failed = true;
        }
    }
}

impl LogState {
    /// Appends whole records, rotating between two records when the next
    /// would take the file past its limit. Records are batched into as few
    /// writes as rotation allows.
    fn write_records(&mut self, records: &[Vec<u8>]) -> std::io::Result<()> {
        let mut batch: Vec<u8> = Vec::new();
        for record in records {
            let size = self.written + (batch.len() + record.len()) as u64;
            if size > self.max_bytes && self.written + batch.len() as u64 > 0 {
                self.append(&batch)?;
                batch.clear();
                self.rotate()?;
            }
            batch.extend_from_slice(record);
        }
        self.append(&batch)
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        fs::rename(&self.path, rotated_path(&self.path))?;
        self.file = open_append(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// `<path>.1`: where a log file goes when it is rotated.
pub fn rotated_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// One stream's handle on a [`LogFile`]: what the guest's stdout or stderr
/// is. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LogStream {
    file: LogFile,
    stream: Stream,
}

impl LogStream {
    /// The file this stream writes.
    pub fn log_file(&self) -> &LogFile {
        &self.file
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.file.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        // Every write goes straight to the file.
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_WRITE)
    }
}

impl AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let len = buf.len().min(MAX_WRITE);
        self.file.write(self.stream, &buf[..len]);
        Poll::Ready(Ok(len))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The log files that currently have a writer, by path. One per node,
/// shared by the runtime (which registers files) and the log endpoint
/// (which asks).
#[derive(Debug, Default)]
pub struct LogRegistry {
    open: Mutex<HashMap<PathBuf, usize>>,
}

impl LogRegistry {
    pub fn new() -> Arc<LogRegistry> {
        Arc::new(LogRegistry::default())
    }

    /// Whether a live [`LogFile`] writes `path` (as given to
    /// [`LogFile::create_registered`]).
    pub fn is_open(&self, path: &Path) -> bool {
        self.lock().contains_key(path)
    }

    fn register(self: &Arc<Self>, path: &Path) -> Registration {
        *self.lock().entry(path.to_path_buf()).or_insert(0) += 1;
        Registration {
            registry: Arc::clone(self),
            path: path.to_path_buf(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PathBuf, usize>> {
        // Each update is a single map operation: the map is valid after any panic.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A file's entry in the registry, removed when dropped.
struct Registration {
    registry: Arc<LogRegistry>,
    path: PathBuf,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut open = self.registry.lock();
        if let Some(count) = open.get_mut(&self.path) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::log_format::{LineJoiner, parse};

    /// The lines of a log file, as `<stream> <F|P> <text>` without times.
    fn records(path: &Path) -> Vec<String> {
        let text = fs::read_to_string(path).expect("readable");
        text.lines()
            .map(|line| {
                let record = parse(line.as_bytes()).expect("a record");
                format!(
                    "{} {} {}",
                    record.stream.as_str(),
                    if record.partial { "P" } else { "F" },
                    String::from_utf8_lossy(record.text)
                )
            })
            .collect()
    }

    #[test]
    fn streams_write_tagged_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LogFile::create(dir.path().join("c.log"), 1 << 20).expect("create");
        let (out, err) = (log.stdout(), log.stderr());
        log.write(out.stream, b"hel");
        log.write(err.stream, b"warning\n");
        log.write(out.stream, b"lo\nbye\n");
        assert_eq!(
            records(&log.path()),
            [
                "stdout P hel",
                "stderr F warning",
                "stdout F lo",
                "stdout F bye"
            ]
        );
        let text = fs::read(log.path()).expect("readable");
        let mut joiner = LineJoiner::default();
        let lines: Vec<Vec<u8>> = text
            .split(|&b| b == b'\n')
            .filter_map(parse)
            .filter_map(|r| joiner.push(&r))
            .map(|l| l.text)
            .collect();
        assert_eq!(lines, [&b"warning"[..], b"hello", b"bye"]);
    }

    #[test]
    fn log_file_rotates_between_records_at_its_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A record is 41 bytes of framing plus its text.
        let log = LogFile::create(dir.path().join("c.log"), 100).expect("create");
        log.write(Stream::Stdout, b"one\n");
        log.write(Stream::Stdout, b"two\n");
        assert_eq!(records(&log.path()), ["stdout F one", "stdout F two"]);
        log.write(Stream::Stderr, b"three\nfour\n");
        assert_eq!(
            records(&log.rotated_path()),
            ["stdout F one", "stdout F two"]
        );
        assert_eq!(records(&log.path()), ["stderr F three", "stderr F four"]);
        log.write(Stream::Stdout, b"five\n");
        assert_eq!(
            records(&log.rotated_path()),
            ["stderr F three", "stderr F four"]
        );
        assert_eq!(records(&log.path()), ["stdout F five"]);
        // One write that fills the file rotates between its records.
        log.write(Stream::Stdout, b"a\nb\nc\n");
        assert_eq!(
            records(&log.rotated_path()),
            ["stdout F five", "stdout F a"]
        );
        assert_eq!(records(&log.path()), ["stdout F b", "stdout F c"]);
    }

    #[test]
    fn a_record_larger_than_the_limit_is_written_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LogFile::create(dir.path().join("c.log"), 10).expect("create");
        log.write(Stream::Stdout, b"0123456789abcdef\n");
        log.write(Stream::Stdout, b"x\n");
        assert_eq!(records(&log.rotated_path()), ["stdout F 0123456789abcdef"]);
        assert_eq!(records(&log.path()), ["stdout F x"]);
    }

    #[test]
    fn log_file_appends_to_an_existing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.log");
        fs::write(&path, b"2023-11-14T22:13:20Z stdout F before\n").expect("seed");
        let log = LogFile::create(&path, 1024).expect("create");
        log.write(Stream::Stdout, b"after\n");
        assert_eq!(records(&path), ["stdout F before", "stdout F after"]);
    }

    #[test]
    fn a_file_is_registered_while_a_handle_lives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = LogRegistry::new();
        let path = dir.path().join("0.log");
        let log = LogFile::create_registered(&path, 1024, &registry).expect("create");
        let stream = log.stderr();
        assert!(registry.is_open(&path));
        drop(log);
        assert!(registry.is_open(&path), "the stream still writes");
        drop(stream);
        assert!(!registry.is_open(&path));
        assert!(!registry.is_open(&dir.path().join("1.log")));
    }
}
