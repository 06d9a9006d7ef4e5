//! A container that outgrows any memory limit: it allocates and touches memory
//! step by step, keeping all of it, so its linear memory grows until the
//! node's limit stops it (the node reports that as OOMKilled).

use std::env;
use std::hint::black_box;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

const DEFAULT_STEP_MIB: usize = 16;
const MIB: usize = 1024 * 1024;
/// A pause between steps so the log shows the growth as it happens.
const PAUSE: Duration = Duration::from_millis(100);

fn main() -> ExitCode {
    let step_mib = match step_size(
        env::args().nth(1).as_deref(),
        env::var("STEP_MIB").ok().as_deref(),
    ) {
        Ok(step_mib) => step_mib,
        Err(message) => {
            eprintln!("memhog: {message}");
            return ExitCode::from(2);
        }
    };
    println!("memhog: allocating {step_mib} MiB per step until allocation fails");
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut held_mib = 0;
    loop {
        // The vector of blocks must be able to take one more before the block
        // is allocated, so that failing here is also reported, not aborted.
        if held.try_reserve(1).is_err() {
            out_of_memory(step_mib, held_mib);
        }
        let mut block = Vec::new();
        if block.try_reserve_exact(step_mib * MIB).is_err() {
            out_of_memory(step_mib, held_mib);
        }
        // Writing every byte makes the pages real on the host as well, and a
        // different value per step keeps the writes from being folded away.
        block.resize(step_mib * MIB, (held.len() % 251) as u8 + 1);
        held.push(black_box(block));
        held_mib += step_mib;
        println!("holding {held_mib} MiB");
        thread::sleep(PAUSE);
    }
}

/// Reports where allocation failed, then aborts: this is what Rust does on
/// allocation failure anyway (a trap on WebAssembly), with the log line added.
fn out_of_memory(step_mib: usize, held_mib: usize) -> ! {
    eprintln!("memhog: allocating {step_mib} MiB more failed while holding {held_mib} MiB");
    std::process::abort()
}

/// The step from argv[1], else env STEP_MIB, else 16 MiB.
fn step_size(from_args: Option<&str>, from_env: Option<&str>) -> Result<usize, String> {
    let Some(raw) = from_args.or(from_env) else {
        return Ok(DEFAULT_STEP_MIB);
    };
    match raw.trim().parse::<usize>() {
        Ok(mib) if (1..=1024).contains(&mib) => Ok(mib),
        _ => Err(format!(
            "the step must be between 1 and 1024 MiB, got {raw:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_defaults_to_sixteen_mib() {
        assert_eq!(step_size(None, None), Ok(16));
    }

    #[test]
    fn argument_takes_precedence_over_env() {
        assert_eq!(step_size(Some("4"), Some("8")), Ok(4));
        assert_eq!(step_size(None, Some("8")), Ok(8));
    }

    #[test]
    fn step_outside_range_is_rejected() {
        assert!(step_size(Some("0"), None).is_err());
        assert!(step_size(Some("2048"), None).is_err());
        assert!(step_size(Some("big"), None).is_err());
    }
}
