//! A TCP client for the echo server: every `INTERVAL_MS` it sends
//! `ping N` to `TARGET` and logs the reply, reconnecting when the server
//! is not there (yet). `TARGET` is `host:port`; the host may be a name.
//!
//! `MODE=bench-rtt` and `MODE=bench-throughput` measure the connection
//! instead (round trips of small lines; bytes sent to a server in sink
//! mode) and print one line of figures, for the pod network benchmark.

use std::env;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

const DEFAULT_TARGET: &str = "127.0.0.1:7000";
const DEFAULT_INTERVAL_MS: u64 = 1000;
const DEFAULT_ROUND_TRIPS: u64 = 10_000;
const DEFAULT_BYTES: u64 = 256 * 1024 * 1024;
/// How long a benchmark keeps trying to reach a server that is starting.
const BENCH_CONNECT_TRIES: u32 = 500;

/// What the client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Ping forever, one line per interval.
    Ping,
    /// Time round trips of a short line.
    BenchRtt,
    /// Time sending a volume of bytes to a sink.
    BenchThroughput,
}

fn main() -> ExitCode {
    let target = env::var("TARGET").unwrap_or_else(|_| DEFAULT_TARGET.to_owned());
    let settings = mode(env::var("MODE").ok().as_deref()).and_then(|mode| {
        let interval = number(
            "INTERVAL_MS",
            env::var("INTERVAL_MS").ok(),
            DEFAULT_INTERVAL_MS,
        )?;
        Ok((mode, Duration::from_millis(interval)))
    });
    let (mode, interval) = match settings {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("echo client: {message}");
            return ExitCode::from(2);
        }
    };
    let result = match mode {
        Mode::Ping => ping_forever(&target, interval),
        Mode::BenchRtt => number("COUNT", env::var("COUNT").ok(), DEFAULT_ROUND_TRIPS)
            .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))
            .and_then(|count| bench_rtt(&target, count)),
        Mode::BenchThroughput => number("BYTES", env::var("BYTES").ok(), DEFAULT_BYTES)
            .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))
            .and_then(|bytes| bench_throughput(&target, bytes)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("echo client: {error}");
            ExitCode::from(1)
        }
    }
}

fn mode(raw: Option<&str>) -> Result<Mode, String> {
    match raw.map(str::trim) {
        None | Some("" | "ping") => Ok(Mode::Ping),
        Some("bench-rtt") => Ok(Mode::BenchRtt),
        Some("bench-throughput") => Ok(Mode::BenchThroughput),
        Some(other) => Err(format!(
            "MODE must be ping, bench-rtt or bench-throughput, got {other:?}"
        )),
    }
}

/// A positive whole number from the environment, or the default.
fn number(name: &str, raw: Option<String>, default: u64) -> Result<u64, String> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    match raw.trim().parse::<u64>() {
        Ok(0) => Err(format!("{name} must be at least 1, got 0")),
        Ok(value) => Ok(value),
        Err(_) => Err(format!("{name} must be a whole number, got {raw:?}")),
    }
}

/// Pings forever; a refused or broken connection is logged and retried
/// after one interval.
fn ping_forever(target: &str, interval: Duration) -> io::Result<()> {
    let mut sequence: u64 = 0;
    loop {
        let stream = match TcpStream::connect(target) {
            Ok(stream) => stream,
            Err(error) => {
                eprintln!("cannot connect to {target}: {error}; retrying");
                thread::sleep(interval);
                continue;
            }
        };
        println!("connected to {target}");
        let mut reader = BufReader::new(&stream);
        let mut writer = &stream;
        loop {
            sequence += 1;
            match round_trip(&mut reader, &mut writer, &format!("ping {sequence}")) {
                Ok(reply) => println!("reply: {reply}"),
                Err(error) => {
                    eprintln!("connection to {target} lost: {error}; reconnecting");
                    break;
                }
            }
            thread::sleep(interval);
        }
        thread::sleep(interval);
    }
}

/// Sends one line and reads the answer (without its newline).
fn round_trip(
    reader: &mut impl BufRead,
    writer: &mut impl Write,
    line: &str,
) -> io::Result<String> {
    writer.write_all(line.as_bytes())?;
    writer.write_all(b"\n")?;
    writer.flush()?;
    let mut reply = String::new();
    if reader.read_line(&mut reply)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    Ok(reply.trim_end_matches(['\r', '\n']).to_owned())
}

/// Connects, retrying while the server is starting.
fn connect_patiently(target: &str) -> io::Result<TcpStream> {
    let mut tries = 0;
    loop {
        match TcpStream::connect(target) {
            Ok(stream) => return Ok(stream),
            Err(error) if tries >= BENCH_CONNECT_TRIES => return Err(error),
            Err(_) => {
                tries += 1;
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn bench_rtt(target: &str, count: u64) -> io::Result<()> {
    let stream = connect_patiently(target)?;
    let mut reader = BufReader::new(&stream);
    let mut writer = &stream;
    let mut micros = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for sequence in 0..count {
        let began = Instant::now();
        round_trip(&mut reader, &mut writer, &format!("ping {sequence}"))?;
        micros.push(began.elapsed().as_secs_f64() * 1e6);
    }
    micros.sort_by(f64::total_cmp);
    println!(
        "bench-rtt count={count} p50_us={:.1} p99_us={:.1}",
        percentile(&micros, 50.0),
        percentile(&micros, 99.0)
    );
    Ok(())
}

fn bench_throughput(target: &str, bytes: u64) -> io::Result<()> {
    let mut stream = connect_patiently(target)?;
    let chunk = vec![b'x'; 64 * 1024];
    let began = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
        stream.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    stream.flush()?;
    stream.shutdown(Shutdown::Write)?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer)?;
    let seconds = began.elapsed().as_secs_f64();
    let expected = format!("received {bytes} bytes");
    if answer.trim_end() != expected {
        return Err(io::Error::other(format!(
            "the sink answered {:?}, expected {expected:?}",
            answer.trim_end()
        )));
    }
    println!(
        "bench-throughput bytes={bytes} seconds={seconds:.3} mb_per_s={:.1}",
        bytes as f64 / seconds / 1e6
    );
    Ok(())
}

/// The `p`th percentile of sorted samples (nearest rank).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_sends_a_line_and_reads_one() {
        let mut sent = Vec::new();
        let mut reader = &b"ping 7\nrest"[..];
        let reply = round_trip(&mut reader, &mut sent, "ping 7").expect("round trip");
        assert_eq!(reply, "ping 7");
        assert_eq!(sent, b"ping 7\n");
    }

    #[test]
    fn round_trip_reports_a_closed_connection() {
        let mut sent = Vec::new();
        let error = round_trip(&mut &b""[..], &mut sent, "ping 1").expect_err("eof");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn settings_have_defaults_and_reject_zero() {
        assert_eq!(mode(None), Ok(Mode::Ping));
        assert_eq!(mode(Some("bench-rtt")), Ok(Mode::BenchRtt));
        assert!(mode(Some("fast")).is_err());
        assert_eq!(number("INTERVAL_MS", None, 1000), Ok(1000));
        assert!(number("INTERVAL_MS", Some("0".into()), 1000).is_err());
        assert!(number("INTERVAL_MS", Some("soon".into()), 1000).is_err());
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 50.0), 50.0);
        assert_eq!(percentile(&samples, 99.0), 99.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
