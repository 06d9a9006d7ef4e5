//! A TCP echo server, for a pod's shared loopback and pod-to-pod
//! networking: a sidecar reaches it at 127.0.0.1, other pods at the pod IP.
//!
//! It serves one connection at a time (WASI preview 2 programs have no
//! threads), echoing every line back. With `MODE=sink` it reads a
//! connection to its end instead and answers `received N bytes`, which the
//! throughput benchmark uses.

use std::env;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;

const DEFAULT_LISTEN: &str = "0.0.0.0:7000";

/// What the server does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Write back every line.
    Echo,
    /// Count the bytes until the client stops sending, then report them.
    Sink,
}

fn main() -> ExitCode {
    let listen = env::var("LISTEN").unwrap_or_else(|_| DEFAULT_LISTEN.to_owned());
    let mode = match mode(env::var("MODE").ok().as_deref()) {
        Ok(mode) => mode,
        Err(message) => {
            eprintln!("echo server: {message}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&listen) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("echo server: cannot listen on {listen}: {error}");
            return ExitCode::from(1);
        }
    };
    let local = listener
        .local_addr()
        .map_or_else(|_| listen.clone(), |addr| addr.to_string());
    println!("echo server listening on {local}");
    for connection in listener.incoming() {
        let stream = match connection {
            Ok(stream) => stream,
            Err(error) => {
                eprintln!("echo server: accept failed: {error}");
                continue;
            }
        };
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "unknown".to_owned(), |addr| addr.to_string());
        println!("connection from {peer}");
        let served = match mode {
            Mode::Echo => echo(stream),
            Mode::Sink => sink(stream),
        };
        match served {
            Ok(()) => println!("connection from {peer} closed"),
            Err(error) => eprintln!("connection from {peer} failed: {error}"),
        }
    }
    ExitCode::SUCCESS
}

fn mode(raw: Option<&str>) -> Result<Mode, String> {
    match raw.map(str::trim) {
        None | Some("" | "echo") => Ok(Mode::Echo),
        Some("sink") => Ok(Mode::Sink),
        Some(other) => Err(format!("MODE must be echo or sink, got {other:?}")),
    }
}

/// Writes back every line until the client closes the connection.
fn echo(stream: TcpStream) -> io::Result<()> {
    let mut writer = &stream;
    echo_lines(BufReader::new(&stream), &mut writer)
}

fn echo_lines(mut reader: impl BufRead, writer: &mut impl Write) -> io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        writer.write_all(&line)?;
        writer.flush()?;
    }
}

/// Reads until the client shuts down its side, then reports the count.
fn sink(mut stream: TcpStream) -> io::Result<()> {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        match stream.read(&mut buffer)? {
            0 => break,
            n => total += n as u64,
        }
    }
    writeln!(stream, "received {total} bytes")?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_back_unchanged() {
        let input = b"ping 1\nping 2\nno newline";
        let mut output = Vec::new();
        echo_lines(&input[..], &mut output).expect("echo");
        assert_eq!(output, input);
    }

    #[test]
    fn mode_defaults_to_echo_and_rejects_garbage() {
        assert_eq!(mode(None), Ok(Mode::Echo));
        assert_eq!(mode(Some("sink")), Ok(Mode::Sink));
        assert!(mode(Some("loud")).is_err());
    }
}
