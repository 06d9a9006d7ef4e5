//! One half of the shared-volume example: appends a counted line to a file in
//! a directory that its pod mounts into both containers.

use std::env;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

/// The file the writer appends to and the reader follows, inside SHARED_DIR.
const SHARED_FILE: &str = "lines.txt";
const DEFAULT_SHARED_DIR: &str = "/data";
const INTERVAL: Duration = Duration::from_millis(500);

fn main() -> ExitCode {
    let path = shared_file(env::var("SHARED_DIR").ok().as_deref());
    let mut file = match OpenOptions::new().create(true).append(true).open(&path) {
        Ok(file) => file,
        Err(error) => {
            eprintln!(
                "writer: cannot open {} for appending: {error} (is the volume mounted?)",
                path.display()
            );
            return ExitCode::from(2);
        }
    };
    println!(
        "writer: appending to {} every {} ms",
        path.display(),
        INTERVAL.as_millis()
    );
    let mut counter: u64 = 0;
    loop {
        counter += 1;
        // One write call per line, so a reader polling the file sees whole
        // lines in all but the rarest interleavings (and copes with those).
        if let Err(error) = file.write_all(line(counter).as_bytes()) {
            eprintln!("writer: cannot append to {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote line {counter}");
        thread::sleep(INTERVAL);
    }
}

fn shared_file(shared_dir: Option<&str>) -> PathBuf {
    PathBuf::from(shared_dir.unwrap_or(DEFAULT_SHARED_DIR)).join(SHARED_FILE)
}

fn line(counter: u64) -> String {
    format!("line {counter} from writer\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_file_defaults_to_data() {
        assert_eq!(shared_file(None), PathBuf::from("/data/lines.txt"));
        assert_eq!(
            shared_file(Some("/mnt/x")),
            PathBuf::from("/mnt/x/lines.txt")
        );
    }

    #[test]
    fn each_line_is_terminated() {
        assert_eq!(line(7), "line 7 from writer\n");
    }
}
