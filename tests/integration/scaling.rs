//! Three driftwood processes in one group on 12 partitions, with the cooperative protocol:
//! one is killed, one is added. Partitions move, nothing is lost, rebalances are counted in
//! `/metrics`, and the members that keep partitions keep scoring throughout.

use std::time::{Duration, Instant};

use crate::common::*;

const ASSIGNED: &str = "driftwood_assigned_partitions";
const ASSIGNS: &str = "driftwood_rebalances_total{kind=\"assign\"}";

fn assigned(member: &Member) -> f64 {
    member.metric(ASSIGNED).unwrap_or(0.0)
}

/// What the members kept while the group changed.
#[derive(Debug, Default)]
struct Watched {
    /// Fewest partitions each held.
    fewest: Vec<f64>,
    /// Longest time each went without scoring a record.
    longest_idle: Vec<Duration>,
}

/// Samples `members` every 50 ms until `done` holds (fails after `timeout`).
fn watch(members: &[&Member], timeout: Duration, mut done: impl FnMut() -> bool) -> Watched {
    let start = Instant::now();
    let mut w = Watched {
        fewest: vec![f64::MAX; members.len()],
        longest_idle: vec![Duration::ZERO; members.len()],
    };
    let mut last: Vec<(f64, Instant)> = members.iter().map(|m| (m.scored(), start)).collect();
    while !done() {
        assert!(
            start.elapsed() < timeout,
            "the group did not settle in {timeout:?}: {w:?}"
        );
        for (i, m) in members.iter().enumerate() {
            w.fewest[i] = w.fewest[i].min(assigned(m));
            let scored = m.scored();
            if scored > last[i].0 {
                last[i] = (scored, Instant::now());
            }
            w.longest_idle[i] = w.longest_idle[i].max(last[i].1.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_come_and_go_on_twelve_partitions_and_nothing_is_lost() {
    let bootstrap = bootstrap();
    let config = fresh_topics(bootstrap, 12, 1).await;
    let input = stream(bootstrap, &config, 150_000, 3_000.0);

    // A killed member's partitions move once its session expires: 10 s here.
    let flags = [
        "--kafka-option",
        "consumer.partition.assignment.strategy=cooperative-sticky",
        "--kafka-option",
        "consumer.session.timeout.ms=10000",
        "--revoke-drain",
        "5s",
    ];
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("scaling.log"));
    let [a, b, c] = [(); 3].map(|_| Member::start(&config, &flags, &log));
    watch(&[], Duration::from_secs(60), || {
        [&a, &b, &c].iter().map(|m| assigned(m)).sum::<f64>() == 12.0
            && [&a, &b, &c].iter().all(|m| m.scored() > 0.0)
    });

    a.kill();
    let after_kill = watch(&[&b, &c], Duration::from_secs(60), || {
        assigned(&b) + assigned(&c) == 12.0
    });
    let d = Member::start(&config, &flags, &log);
    let after_add = watch(&[&b, &c], Duration::from_secs(60), || {
        assigned(&d) > 0.0 && assigned(&b) + assigned(&c) + assigned(&d) == 12.0 && d.scored() > 0.0
    });
    eprintln!("after the kill: {after_kill:?}\nafter the add: {after_add:?}");
    for w in [&after_kill, &after_add] {
        assert!(
            w.fewest.iter().all(|n| *n > 0.0),
            "with the cooperative protocol a member keeps partitions through a rebalance: {w:?}"
        );
    }
    for m in [&b, &c, &d] {
        let assigns = m.metric(ASSIGNS).unwrap();
        assert!(assigns >= 1.0, "rebalances counted in /metrics: {assigns}");
    }
    assert!(
        [&b, &c].iter().all(|m| m.metric(ASSIGNS).unwrap() >= 2.0),
        "the survivors were assigned partitions again after the kill"
    );

    let (exited_zero, c) = settle(bootstrap, &config, input, [b, c, d]).await;
    assert!(
        exited_zero,
        "every member exits 0 on SIGTERM; logs in {}",
        log.display()
    );
    eprintln!("members come and go: {c:?}");
    assert_eq!(c.missing_count, 0, "inputs without output: {:?}", c.missing);
    assert_eq!(c.strays, 0);
}
