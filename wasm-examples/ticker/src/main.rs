//! A long-running container that logs a numbered line at a steady pace, for
//! Deployments, `kubectl logs -f` and restart tests.

use std::env;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

const DEFAULT_TICK_MS: u64 = 1000;

fn main() -> ExitCode {
    let interval = match tick_interval(
        env::args().nth(1).as_deref(),
        env::var("TICK_MS").ok().as_deref(),
    ) {
        Ok(interval) => interval,
        Err(message) => {
            eprintln!("ticker: {message}");
            return ExitCode::from(2);
        }
    };
    println!("ticker: one tick every {} ms", interval.as_millis());
    // The counter only grows; at one tick a millisecond u64 lasts far longer
    // than any pod.
    let mut tick: u64 = 0;
    loop {
        tick += 1;
        println!("tick {tick}");
        thread::sleep(interval);
    }
}

/// The interval from argv[1], else env TICK_MS, else the default; zero is
/// refused because it would turn the ticker into a busy loop.
fn tick_interval(from_args: Option<&str>, from_env: Option<&str>) -> Result<Duration, String> {
    let (source, raw) = match (from_args, from_env) {
        (Some(raw), _) => ("argv[1]", raw),
        (None, Some(raw)) => ("TICK_MS", raw),
        (None, None) => return Ok(Duration::from_millis(DEFAULT_TICK_MS)),
    };
    match raw.trim().parse::<u64>() {
        Ok(0) => Err(format!("{source} must be at least 1 ms, got 0")),
        Ok(ms) => Ok(Duration::from_millis(ms)),
        Err(_) => Err(format!(
            "{source} must be a whole number of milliseconds, got {raw:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_takes_precedence_over_env() {
        assert_eq!(
            tick_interval(Some("250"), Some("900")),
            Ok(Duration::from_millis(250))
        );
    }

    #[test]
    fn env_is_used_without_argument() {
        assert_eq!(
            tick_interval(None, Some("900")),
            Ok(Duration::from_millis(900))
        );
    }

    #[test]
    fn default_is_one_second() {
        assert_eq!(tick_interval(None, None), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn zero_and_garbage_are_rejected() {
        assert!(tick_interval(Some("0"), None).is_err());
        assert!(tick_interval(None, Some("soon")).is_err());
    }
}
