//! Capped output streams: the guest's stdout and stderr.
//!
//! A [`CappedPipe`] keeps the first `cap` bytes written to it and counts the rest. Past the
//! cap it either drops the bytes and lets the guest go on (`truncate`), or fails the write
//! with [`OutputOverflow`], which traps the guest (`kill`).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// The write permit handed to the guest: larger than any write a 32-bit guest can make.
///
/// With a smaller permit (this was 64 KiB) the guest wrote the first permit's worth of a
/// larger write and lost the rest without an error: CPython saw the whole write succeed
/// (`wasm::large_single_writes_are_kept_whole_up_to_the_cap`). The pipe takes any length (it keeps up to the cap and counts the
/// rest), so it never needs to hold a guest back.
const WRITE_PERMIT_BYTES: usize = 1 << 32;

/// The trap raised when a stream passes its cap and the policy says overflow kills.
#[derive(Debug, thiserror::Error)]
#[error("{stream} passed its {cap}-byte cap")]
pub struct OutputOverflow {
    pub stream: &'static str,
    pub cap: usize,
}

#[derive(Debug, Default)]
struct State {
    kept: Vec<u8>,
    /// Bytes written past the cap and dropped.
    dropped: u64,
}

/// One of the guest's output streams, shared between the WASI context and the host.
#[derive(Debug, Clone)]
pub struct CappedPipe {
    name: &'static str,
    cap: usize,
    kill_on_overflow: bool,
    state: Arc<Mutex<State>>,
}

impl CappedPipe {
    pub fn new(name: &'static str, cap: usize, kill_on_overflow: bool) -> Self {
        Self {
            name,
            cap,
            kill_on_overflow,
            state: Arc::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is a byte buffer and a counter: always consistent, even after a panic
        // elsewhere.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The bytes kept and whether anything was dropped.
    pub fn take(&self) -> (Vec<u8>, bool) {
        let mut state = self.state();
        (std::mem::take(&mut state.kept), state.dropped > 0)
    }

    /// Whether anything was written past the cap.
    pub fn overflowed(&self) -> bool {
        self.state().dropped > 0
    }

    fn push(&self, bytes: &[u8]) -> Result<(), OutputOverflow> {
        let mut state = self.state();
        let room = self.cap.saturating_sub(state.kept.len());
        let (keep, drop) = bytes.split_at(room.min(bytes.len()));
        state.kept.extend_from_slice(keep);
        if drop.is_empty() {
            return Ok(());
        }
        state.dropped += drop.len() as u64;
        if self.kill_on_overflow {
            return Err(OutputOverflow {
                stream: self.name,
                cap: self.cap,
            });
        }
        Ok(())
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes)
            .map_err(|overflow| StreamError::Trap(wasmtime::Error::new(overflow)))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT_BYTES)
    }
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(
            self.push(buf)
                .map(|()| buf.len())
                .map_err(std::io::Error::other),
        )
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_the_cap() {
        let pipe = CappedPipe::new("stdout", 5, false);
        pipe.push(b"abc").unwrap();
        pipe.push(b"defgh").unwrap();
        assert!(pipe.overflowed());
        assert_eq!(pipe.take(), (b"abcde".to_vec(), true));
    }

    #[test]
    fn kill_mode_fails_the_write_past_the_cap() {
        let pipe = CappedPipe::new("stderr", 4, true);
        pipe.push(b"abcd").unwrap();
        let err = pipe.push(b"e").unwrap_err();
        assert_eq!(err.stream, "stderr");
        assert_eq!(pipe.take(), (b"abcd".to_vec(), true));
    }
}
