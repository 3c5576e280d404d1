//! The demo's command line: its version, its help, and a usage error for a bad
//! flag.

#[path = "../../tests/demo/support.rs"]
mod demo;

#[test]
fn version_help_and_a_usage_error_for_a_bad_flag() {
    let output = demo::run(&["--addr", "localhost"], &[]);
    demo::assert_fails(&output, 2, &["invalid value 'localhost' for '--addr"]);
    let version = demo::run(&["--version"], &[]);
    assert!(version.status.success());
    let expected = format!("axum-autoreload-demo {}", env!("CARGO_PKG_VERSION"));
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), expected);
    let help = String::from_utf8_lossy(&demo::run(&["--help"], &[]).stdout).into_owned();
    demo::assert_contains(&help, &["--addr", "--port", "[env: PORT"]);
    demo::assert_contains(&help, &["--static-dir", "--drain-deadline"]);
}
