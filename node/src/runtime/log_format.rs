//! The CRI container log format, as kubelet and containerd write it: one
//! record per line, `<RFC 3339 UTC time> <stdout|stderr> <F|P> <text>\n`.
//!
//! `F` ends a line of the guest's output; `P` is a partial line (the guest
//! wrote text without a newline), continued by the next record of the same
//! stream. Writers ([`super::LogFile`]) encode records; readers (the node's
//! log endpoint) parse them and join partial records with [`LineJoiner`].
//! Nothing here knows files or wasmtime.

use jiff::Timestamp;

/// The stream a record was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The stream's name in a record.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// One parsed record: a line of the log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub time: Timestamp,
    pub stream: Stream,
    /// `P`: the text continues in the next record of the stream.
    pub partial: bool,
    /// The guest's bytes, without the newline that ends a full line.
    pub text: &'a [u8],
}

/// Appends the records of one write of `bytes` to `stream` at `time` to
/// `records`, one `Vec` per record so that a writer may rotate between them.
/// Each `\n` ends a full record; text after the last newline becomes a
/// partial record.
pub fn encode(time: Timestamp, stream: Stream, bytes: &[u8], records: &mut Vec<Vec<u8>>) {
    // Nanosecond precision, always nine digits, as containerd writes it.
    let prefix = format!("{time:.9} {} ", stream.as_str());
    let mut rest = bytes;
    while !rest.is_empty() {
        let (text, partial, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => (&rest[..end], false, &rest[end + 1..]),
            None => (rest, true, &rest[rest.len()..]),
        };
        let mut record = Vec::with_capacity(prefix.len() + text.len() + 3);
        record.extend_from_slice(prefix.as_bytes());
        record.extend_from_slice(if partial { b"P " } else { b"F " });
        record.extend_from_slice(text);
        record.push(b'\n');
        records.push(record);
        rest = next;
    }
}

/// Parses one line of a log file (without its `\n`); `None` if it is not a
/// record.
pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    let mut fields = line.splitn(4, |&b| b == b' ');
    let time = std::str::from_utf8(fields.next()?).ok()?.parse().ok()?;
    let stream = match fields.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let partial = match fields.next()? {
        b"F" => false,
        b"P" => true,
        _ => return None,
    };
    Some(Record {
        time,
        stream,
        partial,
        text: fields.next().unwrap_or_default(),
    })
}

/// A line of a container's output, joined from its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The time of its first record.
    pub time: Timestamp,
    pub stream: Stream,
    pub text: Vec<u8>,
    /// False for the text of partial records that nothing completed (the
    /// guest ended without a final newline).
    pub complete: bool,
}

/// Joins partial records with the next record of the same stream.
#[derive(Debug, Default)]
pub struct LineJoiner {
    pending: [Option<Line>; 2],
}

impl LineJoiner {
    /// Takes the next record; returns the line it completes, if any.
    pub fn push(&mut self, record: &Record<'_>) -> Option<Line> {
        let slot = &mut self.pending[record.stream.index()];
        let line = slot.get_or_insert_with(|| Line {
            time: record.time,
            stream: record.stream,
            text: Vec::new(),
            complete: false,
        });
        line.text.extend_from_slice(record.text);
        if record.partial {
            return None;
        }
        let mut line = slot.take()?;
        line.complete = true;
        Some(line)
    }

    /// The partial lines still waiting for their end, oldest first.
    pub fn finish(&mut self) -> Vec<Line> {
        let mut lines: Vec<Line> = self.pending.iter_mut().filter_map(Option::take).collect();
        lines.sort_by_key(|l| l.time);
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64, nanos: i32) -> Timestamp {
        Timestamp::new(seconds, nanos).expect("a valid time")
    }

    fn encoded(stream: Stream, bytes: &[u8]) -> Vec<String> {
        let mut records = Vec::new();
        encode(at(1_700_000_000, 5), stream, bytes, &mut records);
        records
            .into_iter()
            .map(|r| String::from_utf8(r).expect("utf-8"))
            .collect()
    }

    #[test]
    fn full_and_partial_lines_are_tagged() {
        assert_eq!(
            encoded(Stream::Stdout, b"one\ntwo\nthr"),
            [
                "2023-11-14T22:13:20.000000005Z stdout F one\n",
                "2023-11-14T22:13:20.000000005Z stdout F two\n",
                "2023-11-14T22:13:20.000000005Z stdout P thr\n",
            ]
        );
        assert_eq!(
            encoded(Stream::Stderr, b"\n"),
            ["2023-11-14T22:13:20.000000005Z stderr F \n"]
        );
        assert!(encoded(Stream::Stdout, b"").is_empty());
    }

    #[test]
    fn records_parse_back() {
        let record = parse(b"2023-11-14T22:13:20.000000005Z stderr P a b ").expect("parses");
        assert_eq!(record.time, at(1_700_000_000, 5));
        assert_eq!(record.stream, Stream::Stderr);
        assert!(record.partial);
        assert_eq!(record.text, b"a b ");
        let empty = parse(b"2023-11-14T22:13:20Z stdout F").expect("parses");
        assert_eq!(empty.text, b"");
        for bad in [
            &b"raw output"[..],
            b"2023-11-14T22:13:20Z stdin F x",
            b"2023-11-14T22:13:20Z stdout X x",
            b"",
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn partial_records_join_per_stream() {
        let mut joiner = LineJoiner::default();
        let rec = |s, p, t: &'static [u8], secs| Record {
            time: at(secs, 0),
            stream: s,
            partial: p,
            text: t,
        };
        assert_eq!(joiner.push(&rec(Stream::Stdout, true, b"hel", 1)), None);
        let err = joiner
            .push(&rec(Stream::Stderr, false, b"oops", 2))
            .expect("a full stderr line");
        assert_eq!(err.text, b"oops");
        let out = joiner
            .push(&rec(Stream::Stdout, false, b"lo", 3))
            .expect("the joined line");
        assert_eq!((out.text.as_slice(), out.time), (&b"hello"[..], at(1, 0)));
        assert!(out.complete);
        assert_eq!(joiner.push(&rec(Stream::Stderr, true, b"tail", 4)), None);
        let rest = joiner.finish();
        assert_eq!(rest.len(), 1);
        assert_eq!(
            (rest[0].text.as_slice(), rest[0].complete),
            (&b"tail"[..], false)
        );
    }
}
