//! `kill -9` of the driftwood process at random moments mid-stream, restarted each time:
//! every input offset still has an output, and the stall after each crash is measured with
//! and without static membership (`--static-membership`).
//!
//! `DRIFTWOOD_KILLS=50 cargo test --test integration crashes -- --nocapture` is the long run
//! whose figures the README gives; CI kills 5 times.

use std::time::{Duration, Instant};

use crate::common::*;
use rand::Rng;

/// Input records per second while the processes are killed.
const RATE: f64 = 4_000.0;

/// What a run of kills measured.
struct Crashes {
    /// From each SIGKILL until the restarted process scored its first record.
    stalls: Vec<Duration>,
    conservation: Conservation,
}

/// Runs one driftwood process at a time on a stream produced at [`RATE`], SIGKILLs it
/// `kills` times at random moments (restarting it each time), lets the last one catch up,
/// stops it with SIGTERM and reads what came out.
async fn kill_repeatedly(kills: usize, extra: &[&str]) -> Crashes {
    let bootstrap = bootstrap();
    let config = fresh_topics(bootstrap, 3, 1).await;
    // Long enough to outlast the kills (each up to 2.5 s apart, plus a restart).
    let records = (RATE * (5.0 + 4.0 * kills as f64)) as usize;
    let input = stream(bootstrap, &config, records, RATE);

    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("crashes.log"));
    let mut member = Member::start(&config, extra, &log);
    member.wait_scored(1.0, Duration::from_secs(60));
    let mut stalls = Vec::with_capacity(kills);
    for _ in 0..kills {
        let pause = rand::rng().random_range(200..2_500);
        std::thread::sleep(Duration::from_millis(pause));
        member.kill();
        let killed = Instant::now();
        member = Member::start(&config, extra, &log);
        member.wait_scored(1.0, Duration::from_secs(120));
        stalls.push(killed.elapsed());
    }
    let (exited_zero, conservation) = settle(bootstrap, &config, input, [member]).await;
    assert!(
        exited_zero,
        "the last process exits 0 on SIGTERM; logs in {}",
        log.display()
    );
    Crashes {
        stalls,
        conservation,
    }
}

fn kills_from_env(default: usize) -> usize {
    std::env::var("DRIFTWOOD_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn report(what: &str, crashes: &Crashes) {
    let mut stalls = crashes.stalls.clone();
    stalls.sort();
    let ms = |d: Option<&Duration>| d.map_or(0, |d| d.as_millis());
    eprintln!(
        "{what}: {} kills, stall after a kill median {} ms, max {} ms; {} inputs, {} outputs, \
         {} duplicates ({:.2}%), {} missing",
        stalls.len(),
        ms(stalls.get(stalls.len() / 2)),
        ms(stalls.last()),
        crashes.conservation.inputs,
        crashes.conservation.outputs,
        crashes.conservation.duplicates,
        100.0 * crashes.conservation.duplicates as f64 / crashes.conservation.inputs as f64,
        crashes.conservation.missing_count,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_static_membership_loses_nothing_and_resumes_at_once() {
    let pod = unique("pod");
    let flags = ["--instance-id", &pod, "--static-membership"];
    let crashes = kill_repeatedly(kills_from_env(5), &flags).await;
    report("static membership", &crashes);
    let c = &crashes.conservation;
    assert_eq!(c.missing_count, 0, "inputs without output: {:?}", c.missing);
    assert_eq!(c.strays, 0, "outputs naming no input");
    // The restarted instance takes its partitions back without waiting for the dead one's
    // session to expire (45 s by default).
    let slowest = crashes.stalls.iter().max().unwrap();
    assert!(
        *slowest < Duration::from_secs(30),
        "a restart waited {slowest:?}: was the group.instance.id reclaimed?"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_dynamic_membership_loses_nothing_after_the_session_times_out() {
    let crashes = kill_repeatedly(1, &[]).await;
    report("dynamic membership", &crashes);
    let c = &crashes.conservation;
    assert_eq!(c.missing_count, 0, "inputs without output: {:?}", c.missing);
    assert_eq!(c.strays, 0, "outputs naming no input");
    // The dead member holds its partitions until session.timeout.ms (45 s) passes.
    let stall = crashes.stalls[0];
    assert!(
        stall > Duration::from_secs(30),
        "the restart resumed after {stall:?}, before the dead member's session expired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_exactly_once_mode_outputs_each_input_once() {
    let pod = unique("pod");
    let flags = [
        "--processing-guarantee",
        "exactly-once",
        "--instance-id",
        &pod,
        "--static-membership",
        // Long transactions, so that most kills land between produce and commit.
        "--transaction-interval",
        "1s",
    ];
    let crashes = kill_repeatedly(kills_from_env(5), &flags).await;
    report("exactly-once", &crashes);
    let c = &crashes.conservation;
    assert_eq!(c.missing_count, 0, "inputs without output: {:?}", c.missing);
    assert_eq!(c.strays, 0, "outputs naming no input");
    assert_eq!(
        c.duplicates, 0,
        "read_committed sees each input's output once"
    );
}
