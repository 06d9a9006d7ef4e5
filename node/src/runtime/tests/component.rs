//! Preview 2 components, using the example programs built by
//! `scripts/build-examples.sh`.

use std::path::PathBuf;

use super::*;
use crate::runtime::ProgramKind;

/// The example component, if it has been built. CI must have it: there a
/// missing file fails the test instead of skipping it.
pub(super) fn example(name: &str) -> Option<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../wasm-examples/out/wasip2")
        .join(format!("{name}.wasm"));
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(error) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "skipping: {} not built ({error}); run scripts/build-examples.sh",
                path.display()
            );
            None
        }
        Err(error) => panic!("{} is missing in CI: {error}", path.display()),
    }
}

#[tokio::test]
async fn hello_component_runs_with_argv_and_env() {
    let Some(bytes) = example("hello") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let program = runtime.load(&bytes).expect("component loads");
    assert_eq!(program.kind(), ProgramKind::Component);
    let log = log(dir.path(), "hello.log");
    let spec = InstanceSpec {
        args: vec!["hello".into(), "world".into()],
        env: vec![("GREETING".into(), "Bonjour".into())],
        stdout: Some(log.stdout()),
        stderr: Some(log.stderr()),
        ..InstanceSpec::default()
    };
    assert_eq!(
        run(&runtime, &program, spec).await,
        ExitStatus::Exit { code: 0 }
    );
    let output = logged(&log);
    assert!(output.starts_with("Bonjour from wasmpod!\n"), "{output}");
    assert!(output.contains(r#"argv: ["hello", "world"]"#), "{output}");
}
