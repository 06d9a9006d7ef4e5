//! A batch job for Job tests: does real work (a sieve of Eratosthenes), prints
//! the answer and exits 0, or fails with exit code 3 when asked to or when its
//! input is bad, so backoffLimit and failure reporting can be exercised.

use std::env;
use std::process::ExitCode;

const DEFAULT_LIMIT: u64 = 100_000;
/// The sieve keeps one byte per odd number, so this bounds it to 50 MB.
const MAX_LIMIT: u64 = 100_000_000;
/// The documented failure code, distinct from a trap or a panic.
const FAILURE_CODE: u8 = 3;

fn main() -> ExitCode {
    let request = match parse(env::args().skip(1)) {
        Ok(request) => request,
        Err(message) => {
            eprintln!("primes: {message}");
            eprintln!("usage: primes [N] [--fail]  (0 <= N <= {MAX_LIMIT})");
            return ExitCode::from(FAILURE_CODE);
        }
    };
    if request.fail {
        eprintln!("primes: failing as requested by --fail");
        return ExitCode::from(FAILURE_CODE);
    }
    let summary = sieve(request.limit);
    println!(
        "primes below {}: count {}, sum {}",
        request.limit, summary.count, summary.sum
    );
    ExitCode::SUCCESS
}

#[derive(Debug, PartialEq, Eq)]
struct Request {
    limit: u64,
    fail: bool,
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Request, String> {
    let mut limit = None;
    let mut fail = false;
    for arg in args {
        if arg == "--fail" {
            fail = true;
        } else if limit.is_some() {
            return Err(format!("unexpected argument {arg:?}"));
        } else {
            let value = arg
                .parse::<u64>()
                .map_err(|_| format!("N must be a non-negative integer, got {arg:?}"))?;
            if value > MAX_LIMIT {
                return Err(format!("N must be at most {MAX_LIMIT}, got {value}"));
            }
            limit = Some(value);
        }
    }
    Ok(Request {
        limit: limit.unwrap_or(DEFAULT_LIMIT),
        fail,
    })
}

#[derive(Debug, PartialEq, Eq)]
struct Summary {
    count: u64,
    sum: u64,
}

/// Counts and sums the primes strictly below `limit`, sieving odd numbers only.
/// The sum of the primes below MAX_LIMIT is about 2.8e14, well inside u64.
fn sieve(limit: u64) -> Summary {
    if limit <= 2 {
        return Summary { count: 0, sum: 0 };
    }
    // Index i stands for the odd number 2i + 1; index 0 (the number 1) is not
    // prime. `limit` is bounded by MAX_LIMIT, so these fit in usize on wasm32.
    let odd_count = ((limit - 1) / 2 + 1) as usize;
    let mut composite = vec![false; odd_count];
    composite[0] = true;
    let mut i = 1;
    while (2 * i + 1) * (2 * i + 1) < limit as usize {
        if !composite[i] {
            let step = 2 * i + 1;
            let mut multiple = (step * step) / 2;
            while multiple < odd_count {
                composite[multiple] = true;
                multiple += step;
            }
        }
        i += 1;
    }
    let mut summary = Summary { count: 1, sum: 2 };
    for (index, is_composite) in composite.iter().enumerate() {
        let number = 2 * index as u64 + 1;
        if !is_composite && number < limit {
            summary.count += 1;
            summary.sum += number;
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| arg.to_string()).collect()
    }

    /// A trial-division reference to check the sieve against.
    fn naive(limit: u64) -> Summary {
        let primes: Vec<u64> = (2..limit)
            .filter(|n| (2..*n).take_while(|d| d * d <= *n).all(|d| n % d != 0))
            .collect();
        Summary {
            count: primes.len() as u64,
            sum: primes.iter().sum(),
        }
    }

    #[test]
    fn sieve_matches_trial_division_for_small_limits() {
        for limit in 0..500 {
            assert_eq!(sieve(limit), naive(limit), "limit {limit}");
        }
    }

    #[test]
    fn sieve_matches_known_values() {
        assert_eq!(
            sieve(100_000),
            Summary {
                count: 9592,
                sum: 454_396_537
            }
        );
        assert_eq!(
            sieve(1_000_000),
            Summary {
                count: 78_498,
                sum: 37_550_402_023
            }
        );
    }

    #[test]
    fn limit_is_exclusive() {
        assert_eq!(sieve(7), Summary { count: 3, sum: 10 });
        assert_eq!(sieve(8), Summary { count: 4, sum: 17 });
    }

    #[test]
    fn parse_defaults_and_flags() {
        assert_eq!(
            parse(args(&[])),
            Ok(Request {
                limit: DEFAULT_LIMIT,
                fail: false
            })
        );
        assert_eq!(
            parse(args(&["50", "--fail"])),
            Ok(Request {
                limit: 50,
                fail: true
            })
        );
    }

    #[test]
    fn parse_rejects_invalid_limits() {
        assert!(parse(args(&["-5"])).is_err());
        assert!(parse(args(&["lots"])).is_err());
        assert!(parse(args(&["100000001"])).is_err());
        assert!(parse(args(&["10", "20"])).is_err());
    }
}
