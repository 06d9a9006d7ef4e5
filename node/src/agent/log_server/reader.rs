//! Reading a container attempt's log files: finding the attempt, turning
//! records into lines, and the `tailLines`/`since*`/`limitBytes`/
//! `timestamps` rules of `kubectl logs`. Synchronous; callers run it on a
//! blocking thread.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::runtime::log_format::{self, Line, LineJoiner};

/// The most one read of a followed file takes, so that one step of a busy
/// log stays small.
const READ_CHUNK: u64 = 1 << 20;

/// The attempt numbers that have a log file in `dir` (`<n>.log` or a
/// rotated `<n>.log.1`), ascending. A missing directory has none.
pub fn attempts(dir: &Path) -> io::Result<Vec<u32>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        let number = name
            .strip_suffix(".log.1")
            .or_else(|| name.strip_suffix(".log"));
        if let Some(n) = number.and_then(|n| n.parse::<u32>().ok()) {
            found.push(n);
        }
    }
    found.sort_unstable();
    found.dedup();
    Ok(found)
}

/// Splits bytes into records (keeping an unfinished last one for later)
/// and joins them into lines.
#[derive(Debug, Default)]
struct RecordReader {
    carry: Vec<u8>,
    joiner: LineJoiner,
}

impl RecordReader {
    fn feed(&mut self, bytes: &[u8], lines: &mut Vec<Line>) {
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let record = if self.carry.is_empty() {
                &rest[..end]
            } else {
                self.carry.extend_from_slice(&rest[..end]);
                &self.carry[..]
            };
            match log_format::parse(record) {
                Some(record) => lines.extend(self.joiner.push(&record)),
                None => tracing::debug!("skipping a line that is not a log record"),
            }
            self.carry.clear();
            rest = &rest[end + 1..];
        }
        self.carry.extend_from_slice(rest);
    }

    fn finish(&mut self, lines: &mut Vec<Line>) {
        lines.extend(self.joiner.finish());
    }
}

/// Reads one container attempt's log: the rotated file, then the current
/// one, and then whatever is appended to it, across rotations.
#[derive(Debug)]
pub struct LogReader {
    path: PathBuf,
    file: Option<File>,
    records: RecordReader,
}

impl LogReader {
    /// Opens the log at `path` and returns the lines written so far.
    /// Partial lines stay pending until [`finish`](LogReader::finish).
    pub fn open(path: PathBuf) -> io::Result<(LogReader, Vec<Line>)> {
        let mut reader = LogReader {
            file: None,
            path,
            records: RecordReader::default(),
        };
        let mut lines = Vec::new();
        match std::fs::read(crate::runtime::rotated_path(&reader.path)) {
            Ok(bytes) => reader.records.feed(&bytes, &mut lines),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        while reader.read_new(&mut lines)? {}
        Ok((reader, lines))
    }

    /// The file this reader follows.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what was appended since the last read (at most about
    /// [`READ_CHUNK`]), moving to the new file when the log was rotated.
    /// Returns whether anything was read.
    pub fn read_new(&mut self, lines: &mut Vec<Line>) -> io::Result<bool> {
        if self.file.is_none() {
            self.file = open_if_present(&self.path)?;
        }
        let Some(file) = &mut self.file else {
            return Ok(false);
        };
        let mut bytes = Vec::new();
        file.by_ref().take(READ_CHUNK).read_to_end(&mut bytes)?;
        if !bytes.is_empty() {
            self.records.feed(&bytes, lines);
            return Ok(true);
        }
        // At the end of the file: if the path now names another file, the
        // log was rotated and this one is complete.
        if self.rotated()? {
            self.file = open_if_present(&self.path)?;
            return self.read_new(lines);
        }
        Ok(false)
    }

    /// The partial lines nothing completed, once the log has ended.
    pub fn finish(&mut self, lines: &mut Vec<Line>) {
        self.records.finish(lines);
    }

    fn rotated(&self) -> io::Result<bool> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        let open = file.metadata()?;
        match std::fs::metadata(&self.path) {
            Ok(current) => Ok(!same_file(&open, &current)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn open_if_present(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    // A rotated file is replaced by a new, shorter one.
    b.len() >= a.len()
}

/// Renders lines as `kubectl logs` shows them: the text (a newline after
/// each full line), after its time with `timestamps`; only lines at or
/// after `since`; at most `limit_bytes` in all.
#[derive(Debug)]
pub struct Output {
    timestamps: bool,
    since: Option<Timestamp>,
    remaining: Option<u64>,
}

impl Output {
    pub fn new(timestamps: bool, since: Option<Timestamp>, limit_bytes: Option<u64>) -> Output {
        Output {
            timestamps,
            since,
            remaining: limit_bytes,
        }
    }

    /// Whether `limitBytes` has been reached: nothing more will be written.
    pub fn exhausted(&self) -> bool {
        self.remaining == Some(0)
    }

    /// Whether `since` lets `line` through.
    pub fn admits(&self, line: &Line) -> bool {
        self.since.is_none_or(|since| line.time >= since)
    }

    /// Appends the lines `since` admits to `out`, up to the byte limit.
    pub fn render(&mut self, lines: &[Line], out: &mut Vec<u8>) {
        for line in lines {
            if !self.admits(line) {
                continue;
            }
            let mut text = Vec::with_capacity(line.text.len() + 32);
            if self.timestamps {
                text.extend_from_slice(format!("{} ", line.time).as_bytes());
            }
            text.extend_from_slice(&line.text);
            if line.complete {
                text.push(b'\n');
            }
            if let Some(remaining) = &mut self.remaining {
                let take = text
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                text.truncate(take);
                *remaining -= take as u64;
            }
            out.extend_from_slice(&text);
            if self.exhausted() {
                return;
            }
        }
    }
}

/// The last `tail` of `lines` (all of them without a tail).
pub fn tail(mut lines: Vec<Line>, tail: Option<u64>) -> Vec<Line> {
    if let Some(n) = tail.map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        && lines.len() > n
    {
        lines.drain(..lines.len() - n);
    }
    lines
}
