//! Bounded files for a guest's stdout and stderr.
//!
//! A [`LogFile`] appends what the guest writes to a file; when the file
//! reaches its size limit it is renamed to `<path>.1` (replacing an older
//! one) and a new file is started, so one stream never holds more than
//! about twice its limit on disk. The same `LogFile` may be given as both
//! stdout and stderr to interleave them, as `kubectl logs` shows them.
//!
//! A failing write (a full disk) drops the output and is logged once; the
//! guest is not told, as a container is not killed when its log disk fills.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The most a guest may hand over in one write; it bounds how far one write
/// can take a file past its limit.
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
        let path = path.into();
        let file = open_append(&path)?;
        let written = file.metadata()?.len();
        Ok(LogFile {
            inner: Arc::new(Mutex::new(LogState {
                path,
                file,
                written,
                max_bytes: max_bytes.max(1),
                failed: false,
            })),
        })
    }

    /// The file being written.
    pub fn path(&self) -> PathBuf {
        self.lock().path.clone()
    }

    /// Where the previous file goes when the current one is rotated.
    pub fn rotated_path(&self) -> PathBuf {
        rotated(&self.lock().path)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        // A panic while holding the lock leaves the state usable: at worst a
        // count of written bytes that is off by one write.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_all(&self, bytes: &[u8]) {
        let mut state = self.lock();
        if let Err(error) = state.write_all(bytes) {
            if !state.failed {
                tracing::warn!(path = %state.path.display(), %error, "dropping guest output");
            }
            state.failed = true;
        }
    }
}

impl LogState {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.written > 0 && self.written + bytes.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        fs::rename(&self.path, rotated(&self.path))?;
        self.file = open_append(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

impl IsTerminal for LogFile {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogFile {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogFile {
    async fn ready(&mut self) {}
}

impl OutputStream for LogFile {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_all(&bytes);
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

impl AsyncWrite for LogFile {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let len = buf.len().min(MAX_WRITE);
        self.write_all(&buf[..len]);
        Poll::Ready(Ok(len))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_file_rotates_at_its_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LogFile::create(dir.path().join("c.log"), 10).expect("create");
        log.write_all(b"0123456789");
        log.write_all(b"abc");
        log.write_all(b"defghij");
        log.write_all(b"k");
        assert_eq!(fs::read(log.path()).expect("current"), b"k");
        assert_eq!(
            fs::read(log.rotated_path()).expect("rotated"),
            b"abcdefghij"
        );
    }

    #[test]
    fn log_file_appends_to_an_existing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.log");
        fs::write(&path, b"before\n").expect("seed");
        let log = LogFile::create(&path, 1024).expect("create");
        log.write_all(b"after\n");
        assert_eq!(fs::read(&path).expect("read"), b"before\nafter\n");
    }
}
