//! The smallest container: shows that argv and env reach the guest, then exits 0.

use std::env;

fn main() {
    let args: Vec<String> = env::args().collect();
    println!("{}", greeting(env::var("GREETING").ok().as_deref()));
    println!("argv: {args:?}");
    if let Ok(greeting) = env::var("GREETING") {
        println!("GREETING={greeting}");
    }
}

/// The first line printed: GREETING if the pod sets it, a fixed one otherwise.
fn greeting(from_env: Option<&str>) -> String {
    match from_env {
        Some(greeting) if !greeting.is_empty() => format!("{greeting} from wasmpod!"),
        _ => "Hello from wasmpod!".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_uses_the_env_value_when_set() {
        assert_eq!(greeting(Some("Bonjour")), "Bonjour from wasmpod!");
    }

    #[test]
    fn greeting_falls_back_when_unset_or_empty() {
        assert_eq!(greeting(None), "Hello from wasmpod!");
        assert_eq!(greeting(Some("")), "Hello from wasmpod!");
    }
}
