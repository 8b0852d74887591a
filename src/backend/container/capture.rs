//! The container's stdout and stderr, kept up to their caps, and the runner's result line.
//!
//! The runner reports how the strategy ended as the last line of stderr:
//! `\n@stratbox-result <nonce> {"ending": ..., "exit_code": ...}\n`. The nonce is random per
//! run and never shown to the strategy before it ends, so a strategy cannot forge the line.
//! The line is not the strategy's output: it is cut from stderr before the cap is applied,
//! and a small reserve past the stderr cap is always read so that the line is found even
//! when the strategy filled its stderr cap.

use serde::Deserialize;

/// Bytes read past the stderr cap so that the result line can still be found.
pub const RESULT_RESERVE_BYTES: usize = 8 << 10;

/// The prefix of the runner's result line (after the leading newline).
const RESULT_TAG: &str = "@stratbox-result";

/// What the runner says about the strategy's ending.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RunnerResult {
    /// `ok`, `exit`, `exception`, `memory` or `preflight`.
    pub ending: String,
    /// The exit code the strategy would have had as a plain Python process.
    pub exit_code: i32,
    /// Why the preflight check failed (only for `preflight`).
    #[serde(default)]
    pub detail: Option<String>,
}

/// One capped stream.
#[derive(Debug)]
pub struct Capped {
    cap: usize,
    kept: Vec<u8>,
    /// Everything written, including what was dropped.
    total: u64,
}

impl Capped {
    /// Keeps up to `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            kept: Vec::new(),
            total: 0,
        }
    }

    /// Adds bytes; returns true when this push went past the cap.
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        let room = self.cap.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&bytes[..room.min(bytes.len())]);
        self.total += bytes.len() as u64;
        self.total > self.cap as u64
    }

    /// The kept bytes and whether anything was dropped.
    pub fn finish(self) -> (Vec<u8>, bool) {
        let truncated = self.total > self.cap as u64;
        (self.kept, truncated)
    }
}

/// stderr: the strategy's text up to its cap, the reserve, and the tail where the result
/// line is.
#[derive(Debug)]
pub struct Stderr {
    cap: usize,
    head: Capped,
    tail: Vec<u8>,
}

impl Stderr {
    /// Keeps up to `cap` bytes of the strategy's stderr.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            head: Capped::new(cap.saturating_add(RESULT_RESERVE_BYTES)),
            tail: Vec::new(),
        }
    }

    /// Adds bytes; returns true when the stream went past the cap by more than a result
    /// line could account for (so the strategy itself overflowed).
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        let over = self.head.push(bytes);
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > 2 * RESULT_RESERVE_BYTES {
            self.tail.drain(..self.tail.len() - RESULT_RESERVE_BYTES);
        }
        over
    }

    /// Splits off the result line with this nonce. Returns the strategy's stderr (cut to
    /// the cap), whether the strategy's stderr passed the cap, and the result, if any.
    pub fn finish(self, nonce: &str) -> (Vec<u8>, bool, Option<RunnerResult>) {
        let total = self.head.total;
        let found = self.result(nonce).map(|(at, result)| {
            // Offset of the marker in the whole stream.
            (total - (self.tail.len() - at) as u64, result)
        });
        let (strategy_len, result) = match found {
            Some((offset, result)) => (offset, Some(result)),
            None => (total, None),
        };
        let (mut kept, _) = self.head.finish();
        let keep = usize::try_from(strategy_len)
            .unwrap_or(usize::MAX)
            .min(self.cap);
        kept.truncate(keep);
        (kept, strategy_len > self.cap as u64, result)
    }
}

impl Stderr {
    /// Whether the runner's result line with this nonce has been read, whole.
    pub fn reported(&self, nonce: &str) -> bool {
        self.result(nonce).is_some()
    }

    /// Where in the tail the last whole result line with this nonce starts, and what it
    /// says.
    fn result(&self, nonce: &str) -> Option<(usize, RunnerResult)> {
        let marker = format!("\n{RESULT_TAG} {nonce} ");
        let at = find_last(&self.tail, marker.as_bytes())?;
        let rest = &self.tail[at + marker.len()..];
        let end = rest.iter().position(|b| *b == b'\n')?;
        let result = serde_json::from_slice::<RunnerResult>(&rest[..end]).ok()?;
        Some((at, result))
    }
}

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > haystack.len() {
        return None;
    }
    (0..=haystack.len() - needle.len())
        .rev()
        .find(|&i| haystack[i..].starts_with(needle))
}

/// Text from captured bytes (invalid UTF-8, e.g. a character cut at the cap, is replaced).
pub fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(nonce: &str, json: &str) -> String {
        format!("\n{RESULT_TAG} {nonce} {json}\n")
    }

    #[test]
    fn reported_only_once_the_whole_line_with_the_nonce_is_read() {
        let mut err = Stderr::new(1024);
        err.push(b"strategy output\n");
        assert!(!err.reported("n1"));
        let whole = line("n1", r#"{"ending": "ok", "exit_code": 0}"#);
        let (first, rest) = whole.split_at(whole.len() - 5);
        err.push(first.as_bytes());
        assert!(!err.reported("n1"), "a line cut short is not a result");
        err.push(rest.as_bytes());
        assert!(err.reported("n1"));
        assert!(
            !err.reported("n2"),
            "another nonce is not this run's result"
        );
        let mut forged = Stderr::new(1024);
        forged.push(line("n1", "not json").as_bytes());
        assert!(!forged.reported("n1"));
    }

    #[test]
    fn result_line_is_cut_from_stderr() {
        let mut err = Stderr::new(100);
        err.push(b"warning\n");
        err.push(line("n1", r#"{"ending": "ok", "exit_code": 0}"#).as_bytes());
        let (kept, truncated, result) = err.finish("n1");
        assert_eq!(kept, b"warning\n");
        assert!(!truncated);
        assert_eq!(result.expect("result").ending, "ok");
    }

    #[test]
    fn forged_nonce_is_not_the_result() {
        let mut err = Stderr::new(1000);
        err.push(line("guess", r#"{"ending": "ok", "exit_code": 0}"#).as_bytes());
        let (kept, _, result) = err.finish("real");
        assert!(result.is_none());
        assert!(String::from_utf8(kept).expect("utf8").contains("guess"));
    }

    #[test]
    fn result_found_past_a_full_cap() {
        let mut err = Stderr::new(10);
        let over = err.push(&[b'x'; 50]);
        assert!(!over, "within the reserve");
        err.push(line("n", r#"{"ending": "exception", "exit_code": 1}"#).as_bytes());
        let (kept, truncated, result) = err.finish("n");
        assert_eq!(kept, [b'x'; 10]);
        assert!(truncated);
        assert_eq!(result.expect("result").exit_code, 1);
    }

    #[test]
    fn flood_past_the_reserve_overflows() {
        let mut err = Stderr::new(10);
        assert!(err.push(&vec![b'x'; RESULT_RESERVE_BYTES + 11]));
        let (kept, truncated, result) = err.finish("n");
        assert_eq!(kept.len(), 10);
        assert!(truncated);
        assert!(result.is_none());
    }

    #[test]
    fn stdout_cap() {
        let mut out = Capped::new(3);
        assert!(!out.push(b"ab"));
        assert!(out.push(b"cd"));
        assert_eq!(out.finish(), (b"abc".to_vec(), true));
    }

    #[test]
    fn cut_character_is_replaced() {
        assert_eq!(text("é".as_bytes()[..1].to_vec()), "\u{fffd}");
    }
}
