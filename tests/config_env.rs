//! Library calls that read `DRIFTWOOD_*` variables return an error on a malformed value; they
//! never exit the process. (Alone in its test binary: it sets a process-wide variable.)

use driftwood::config::RunConfig;

#[test]
fn a_malformed_environment_value_is_an_error_not_an_exit() {
    // SAFETY: this binary has no other test, so no other thread reads the environment.
    unsafe { std::env::set_var("DRIFTWOOD_MAX_IN_FLIGHT", "lots") };
    let err = RunConfig::defaults("127.0.0.1:9092")
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("--max-in-flight") && err.contains("lots"),
        "{err}"
    );
}
