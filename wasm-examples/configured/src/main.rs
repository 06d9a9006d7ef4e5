//! A container configured the Kubernetes way: a config file from a configMap
//! volume and a password from a Secret through env. It prints the config and
//! only the length of the secret, and exits 2 if either is missing.

use std::env;
use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

const DEFAULT_CONFIG_FILE: &str = "/etc/app/config.txt";
/// The documented exit code for missing configuration.
const MISSING_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let path =
        PathBuf::from(env::var("CONFIG_FILE").unwrap_or_else(|_| DEFAULT_CONFIG_FILE.to_string()));
    let config = match fs::read_to_string(&path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!(
                "configured: cannot read config file {}: {error} (is the configMap volume mounted?)",
                path.display()
            );
            return ExitCode::from(MISSING_CONFIG);
        }
    };
    let password = match env::var("PASSWORD") {
        Ok(password) => password,
        Err(env::VarError::NotPresent) => {
            eprintln!("configured: env PASSWORD is not set (is the secretKeyRef wired?)");
            return ExitCode::from(MISSING_CONFIG);
        }
        Err(env::VarError::NotUnicode(_)) => {
            eprintln!("configured: env PASSWORD is not valid UTF-8");
            return ExitCode::from(MISSING_CONFIG);
        }
    };
    println!("config from {}:", path.display());
    print!("{config}");
    if !config.is_empty() && !config.ends_with('\n') {
        println!();
    }
    println!("{}", password_report(&password));
    ExitCode::SUCCESS
}

/// What is printed about the secret: its length in characters, never its value.
fn password_report(password: &str) -> String {
    format!("password length: {}", password.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_gives_length_without_the_secret() {
        let report = password_report("hunter2");
        assert_eq!(report, "password length: 7");
        assert!(!report.contains("hunter2"));
    }
}
