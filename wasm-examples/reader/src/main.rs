//! The other half of the shared-volume example: waits for the writer's file and
//! prints every line of it as it appears, like `tail -f` from the start.

use std::env;
use std::fs::File;
use std::io::{self, BufRead, BufReader, ErrorKind, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

/// The file the writer appends to, inside SHARED_DIR.
const SHARED_FILE: &str = "lines.txt";
const DEFAULT_SHARED_DIR: &str = "/data";
const POLL: Duration = Duration::from_millis(200);

fn main() -> ExitCode {
    let path = shared_file(env::var("SHARED_DIR").ok().as_deref());
    let file = match wait_for(&path) {
        Ok(file) => file,
        Err(error) => {
            eprintln!("reader: cannot open {}: {error}", path.display());
            return ExitCode::from(2);
        }
    };
    println!("reader: following {}", path.display());
    let mut follower = Follower::new(BufReader::new(file));
    loop {
        match follower.poll() {
            Ok(lines) => {
                for line in lines {
                    println!("read: {line}");
                }
            }
            Err(error) => {
                eprintln!("reader: cannot read {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        }
        thread::sleep(POLL);
    }
}

fn shared_file(shared_dir: Option<&str>) -> PathBuf {
    PathBuf::from(shared_dir.unwrap_or(DEFAULT_SHARED_DIR)).join(SHARED_FILE)
}

/// Polls until the file exists; the writer may start after the reader.
fn wait_for(path: &Path) -> io::Result<File> {
    let mut announced = false;
    loop {
        match File::open(path) {
            Ok(file) => return Ok(file),
            Err(error) if error.kind() == ErrorKind::NotFound => {
                if !announced {
                    println!("reader: waiting for {}", path.display());
                    announced = true;
                }
                thread::sleep(POLL);
            }
            Err(error) => return Err(error),
        }
    }
}

/// Reads whatever complete lines were appended since the last poll. A line
/// whose newline has not been written yet is held back until it has.
struct Follower<R> {
    source: R,
    /// Bytes consumed so far, to notice when the file was truncated.
    offset: u64,
    partial: Vec<u8>,
}

impl<R: BufRead + Seek> Follower<R> {
    fn new(source: R) -> Self {
        Self {
            source,
            offset: 0,
            partial: Vec::new(),
        }
    }

    fn poll(&mut self) -> io::Result<Vec<String>> {
        let end = self.source.seek(SeekFrom::End(0))?;
        if end < self.offset {
            // Truncated or replaced: start again from the top, as tail -F does.
            self.offset = 0;
            self.partial.clear();
        }
        self.source.seek(SeekFrom::Start(self.offset))?;
        let mut lines = Vec::new();
        loop {
            let read = self.source.read_until(b'\n', &mut self.partial)?;
            if read == 0 {
                return Ok(lines);
            }
            self.offset += read as u64;
            if self.partial.ends_with(b"\n") {
                // The writer's lines are text; anything else is shown, not fatal.
                let line = String::from_utf8_lossy(&self.partial);
                lines.push(line.trim_end_matches(['\n', '\r']).to_string());
                self.partial.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    /// A growable in-memory file: the test appends to the shared buffer while
    /// the follower reads it.
    fn follower_over(content: &[u8]) -> Follower<Cursor<Vec<u8>>> {
        Follower::new(Cursor::new(content.to_vec()))
    }

    fn append(follower: &mut Follower<Cursor<Vec<u8>>>, bytes: &[u8]) {
        let buffer = follower.source.get_mut();
        buffer
            .write_all(bytes)
            .expect("writing to a Vec cannot fail");
    }

    #[test]
    fn complete_lines_are_returned_in_order() {
        let mut follower = follower_over(b"one\ntwo\n");
        assert_eq!(follower.poll().expect("in-memory read"), ["one", "two"]);
        assert!(follower.poll().expect("in-memory read").is_empty());
    }

    #[test]
    fn partial_line_waits_for_its_newline() {
        let mut follower = follower_over(b"one\ntw");
        assert_eq!(follower.poll().expect("in-memory read"), ["one"]);
        append(&mut follower, b"o\nthree\n");
        assert_eq!(follower.poll().expect("in-memory read"), ["two", "three"]);
    }

    #[test]
    fn truncated_file_is_read_again_from_the_start() {
        let mut follower = follower_over(b"one\ntwo\n");
        assert_eq!(follower.poll().expect("in-memory read").len(), 2);
        *follower.source.get_mut() = b"new\n".to_vec();
        assert_eq!(follower.poll().expect("in-memory read"), ["new"]);
    }

    #[test]
    fn shared_file_defaults_to_data() {
        assert_eq!(shared_file(None), PathBuf::from("/data/lines.txt"));
    }
}
