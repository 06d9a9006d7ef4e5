//! A connection's two directions as `wasi:io` streams.
//!
//! The guest's input and output streams and its socket share each
//! direction's state, so that `shutdown` on the socket reaches the streams.
//! Reads and writes go straight to the [`VirtualStream`] without a task in
//! between: a guest's write is in the peer's buffer when the call returns,
//! unless that buffer is full.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

use crate::network::VirtualStream;

/// The most a single read returns, and what a writer may write at once.
const CHUNK: usize = 64 * 1024;

/// Splits a connection into the input and output stream handles its
/// socket and guest share.
pub(crate) fn split(stream: VirtualStream) -> (Reader, Writer) {
    let (read, write) = tokio::io::split(stream);
    (
        Reader(Arc::new(Mutex::new(ReadState::Open {
            half: read,
            ready: None,
        }))),
        Writer(Arc::new(WriteShared(
            Mutex::new(WriteState::Open {
                half: write,
                pending: Bytes::new(),
                shutdown: false,
            }),
            tokio::sync::Notify::new(),
        ))),
    )
}

/// The receiving direction.
#[derive(Clone)]
pub(crate) struct Reader(Arc<Mutex<ReadState>>);

enum ReadState {
    Open {
        half: ReadHalf<VirtualStream>,
        /// What a readiness check already read (empty: the end).
        ready: Option<io::Result<Bytes>>,
    },
    Closed,
}

impl Reader {
    fn state(&self) -> MutexGuard<'_, ReadState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops receiving: later reads see the end of the stream.
    pub(crate) fn shutdown(&self) {
        *self.state() = ReadState::Closed;
    }
}

impl ReadState {
    /// Reads what is there without waiting (with `cx` registered for
    /// more): `None` when nothing is.
    fn poll_chunk(&mut self, cx: &mut Context<'_>, size: usize) -> Poll<io::Result<Bytes>> {
        let ReadState::Open { half, ready } = self else {
            return Poll::Ready(Ok(Bytes::new()));
        };
        if let Some(result) = ready.take() {
            return Poll::Ready(result.map(|mut bytes| {
                if bytes.len() > size {
                    let rest = bytes.split_off(size);
                    *ready = Some(Ok(rest));
                }
                bytes
            }));
        }
        let mut buffer = BytesMut::zeroed(size.min(CHUNK));
        let mut read = ReadBuf::new(&mut buffer);
        match Pin::new(half).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Ready(Ok(())) => {
                let n = read.filled().len();
                buffer.truncate(n);
                Poll::Ready(Ok(buffer.freeze()))
            }
        }
    }

    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if matches!(self, ReadState::Closed) {
            return Err(StreamError::Closed);
        }
        if size == 0 {
            return Ok(Bytes::new());
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.poll_chunk(&mut cx, size) {
            Poll::Pending => Ok(Bytes::new()),
            Poll::Ready(Ok(bytes)) if bytes.is_empty() => {
                *self = ReadState::Closed;
                Err(StreamError::Closed)
            }
            Poll::Ready(Ok(bytes)) => Ok(bytes),
            Poll::Ready(Err(error)) => {
                *self = ReadState::Closed;
                Err(StreamError::LastOperationFailed(error.into()))
            }
        }
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let ReadState::Open { ready, .. } = self else {
            return Poll::Ready(());
        };
        if ready.is_some() {
            return Poll::Ready(());
        }
        match self.poll_chunk(cx, CHUNK) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                if let ReadState::Open { ready, .. } = self {
                    *ready = Some(result);
                }
                Poll::Ready(())
            }
        }
    }
}

impl InputStream for Reader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.state().read(size)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Reader {
    async fn ready(&mut self) {
        std::future::poll_fn(|cx| self.state().poll_ready(cx)).await;
    }
}

/// The sending direction.
#[derive(Clone)]
pub(crate) struct Writer(Arc<WriteShared>);

/// The state of the sending direction, shared by the socket and the
/// guest's output stream.
/// The second field wakes the guest when a background flush finished.
struct WriteShared(Mutex<WriteState>, tokio::sync::Notify);

enum WriteState {
    Open {
        half: WriteHalf<VirtualStream>,
        /// Bytes the guest wrote that the connection has not taken yet.
        pending: Bytes,
        /// Whether to end the direction once `pending` is written.
        shutdown: bool,
    },
    Failed(Option<io::Error>),
    Closed,
}

impl Writer {
    fn state(&self) -> MutexGuard<'_, WriteState> {
        self.0.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the direction once what was written is sent: the peer reads
    /// the end of the stream, later writes fail.
    pub(crate) fn shutdown(&self) {
        let mut state = self.state();
        if let WriteState::Open { shutdown, .. } = &mut *state {
            *shutdown = true;
        }
        drop(state);
        self.progress();
    }

    /// Writes what is pending now, or else in the background: a guest may
    /// go on to read without waiting for its last write, as a kernel
    /// socket buffer would let it.
    fn progress(&self) {
        let now = {
            let mut attempt =
                std::pin::pin!(tokio::task::unconstrained(std::future::poll_fn(|cx| self
                    .state()
                    .poll_progress(cx))));
            std::future::Future::poll(attempt.as_mut(), &mut Context::from_waker(Waker::noop()))
        };
        if now.is_ready() {
            return;
        }
        let writer = self.clone();
        if let Ok(tokio) = tokio::runtime::Handle::try_current() {
            tokio.spawn(async move {
                std::future::poll_fn(|cx| writer.state().poll_progress(cx)).await;
                writer.0.1.notify_waiters();
            });
        }
    }

    fn is_pending(&self) -> bool {
        matches!(&*self.state(), WriteState::Open { pending, .. } if !pending.is_empty())
    }
}

impl WriteState {
    /// Moves pending bytes into the connection; ready once none are left.
    fn poll_progress(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let WriteState::Open {
            half,
            pending,
            shutdown,
        } = self
        else {
            return Poll::Ready(());
        };
        while !pending.is_empty() {
            match Pin::new(&mut *half).poll_write(cx, pending) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    *self = WriteState::Failed(Some(io::ErrorKind::WriteZero.into()));
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(n)) => {
                    let _ = pending.split_to(n);
                }
                Poll::Ready(Err(error)) => {
                    *self = WriteState::Failed(Some(error));
                    return Poll::Ready(());
                }
            }
        }
        if *shutdown {
            match Pin::new(&mut *half).poll_shutdown(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(_) => *self = WriteState::Closed,
            }
        }
        Poll::Ready(())
    }

    fn check(&mut self) -> StreamResult<()> {
        match self {
            WriteState::Open {
                shutdown: false, ..
            } => Ok(()),
            WriteState::Open { shutdown: true, .. } | WriteState::Closed => {
                Err(StreamError::Closed)
            }
            WriteState::Failed(error) => match error.take() {
                Some(error) => Err(StreamError::LastOperationFailed(error.into())),
                None => Err(StreamError::Closed),
            },
        }
    }
}

impl OutputStream for Writer {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut state = self.state();
        state.check()?;
        if let WriteState::Open { pending, .. } = &mut *state {
            if !pending.is_empty() || bytes.len() > CHUNK {
                return Err(StreamError::Trap(wasmtime::format_err!(
                    "write of {} bytes exceeds what check-write permitted",
                    bytes.len()
                )));
            }
            *pending = bytes;
        }
        drop(state);
        self.progress();
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        // Written bytes are in the connection (or pending, which readiness
        // reports); the connection itself buffers nothing to flush.
        self.state().check()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.state().check()?;
        Ok(if self.is_pending() { 0 } else { CHUNK })
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Writer {
    async fn ready(&mut self) {
        loop {
            let flushed = self.0.1.notified();
            let mut flushed = std::pin::pin!(flushed);
            flushed.as_mut().enable();
            if !self.is_pending() {
                return;
            }
            flushed.await;
        }
    }
}

impl Drop for WriteShared {
    fn drop(&mut self) {
        // Bytes still pending when the guest lets go of the connection are
        // sent in the background, as a kernel sends a closed socket's
        // buffer.
        let state = self.0.get_mut().unwrap_or_else(PoisonError::into_inner);
        let WriteState::Open { half, pending, .. } = std::mem::replace(state, WriteState::Closed)
        else {
            return;
        };
        if pending.is_empty() {
            return;
        }
        if let Ok(tokio) = tokio::runtime::Handle::try_current() {
            tokio.spawn(linger(half, pending));
        }
    }
}

async fn linger(mut half: WriteHalf<VirtualStream>, pending: Bytes) {
    if half.write_all(&pending).await.is_ok() {
        let _ = half.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads from `reader` until `want` bytes came or the stream ended.
    async fn read_all(reader: &mut Reader, want: usize) -> (Vec<u8>, bool) {
        let mut got = Vec::new();
        while got.len() < want {
            reader.ready().await;
            match reader.read(want - got.len()) {
                Ok(bytes) => got.extend_from_slice(&bytes),
                Err(StreamError::Closed) => return (got, true),
                Err(error) => panic!("read failed: {error}"),
            }
        }
        (got, false)
    }

    #[tokio::test]
    async fn bytes_written_on_one_end_are_read_on_the_other() {
        let (a, b) = VirtualStream::pair();
        let (_, mut writer) = split(a);
        let (mut reader, _) = split(b);
        assert_eq!(writer.check_write().expect("writable"), CHUNK);
        writer
            .write(Bytes::from_static(b"ping 1\n"))
            .expect("write");
        writer.flush().expect("flush");
        let (got, ended) = read_all(&mut reader, 7).await;
        assert_eq!(got, b"ping 1\n");
        assert!(!ended);
    }

    #[tokio::test]
    async fn shutdown_ends_the_peers_stream_and_later_writes() {
        let (a, b) = VirtualStream::pair();
        let (_, mut writer) = split(a);
        let (mut reader, _) = split(b);
        writer.write(Bytes::from_static(b"last")).expect("write");
        writer.shutdown();
        assert!(matches!(
            writer.write(Bytes::from_static(b"more")),
            Err(StreamError::Closed)
        ));
        let (got, ended) = read_all(&mut reader, 100).await;
        assert_eq!(got, b"last");
        assert!(ended);
    }

    #[tokio::test]
    async fn a_full_peer_buffer_holds_writes_back_and_drop_still_delivers_them() {
        let (a, b) = VirtualStream::pair();
        let (_, mut writer) = split(a);
        let (mut reader, _) = split(b);
        let chunk = Bytes::from(vec![b'x'; CHUNK]);
        let mut written = 0;
        // Fill the in-memory pipe until the writer has to hold bytes back.
        while writer.check_write().expect("writable") > 0 {
            writer.write(chunk.clone()).expect("write");
            written += CHUNK;
        }
        drop(writer);
        let (got, ended) = read_all(&mut reader, written + 1).await;
        assert_eq!(got.len(), written);
        assert!(ended);
    }

    #[test]
    fn a_shut_down_reader_reads_the_end() {
        let (a, _b) = VirtualStream::pair();
        let (mut reader, _) = split(a);
        reader.shutdown();
        assert!(matches!(reader.read(10), Err(StreamError::Closed)));
    }
}
