//! The end-to-end scenario against Apache Kafka in Docker, through testcontainers. Needs a
//! Docker engine (DOCKER_HOST) holding `apache/kafka:4.4.0`: no registry is reachable here,
//! so scripts/docker.sh starts Debian's dockerd and builds that image from Kafka's jars
//! (tests/images/kafka); scripts/test.sh does both and runs this with
//! `cargo test --features testcontainers`.

use testcontainers_modules::kafka::apache;
use testcontainers_modules::testcontainers::ImageExt;
use testcontainers_modules::testcontainers::runners::AsyncRunner;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_every_record_and_dead_letters_the_corrupt_ones_on_apache_kafka() {
    crate::common::init_logging();
    // The JVM image under the version scripts/kafka.sh installs (the module's default tag
    // is 3.8.0, its default image the GraalVM native one).
    let kafka = apache::Kafka::default()
        .with_jvm_image()
        .with_tag("4.4.0")
        .start()
        .await
        .expect("starting Apache Kafka needs a Docker engine with apache/kafka:4.4.0: scripts/docker.sh start, then scripts/docker.sh kafka-image");
    let port = kafka
        .get_host_port_ipv4(apache::KAFKA_PORT)
        .await
        .expect("Kafka port");
    let bootstrap = format!("127.0.0.1:{port}");
    crate::end_to_end::scores_every_record_and_dead_letters_the_corrupt_ones_on(&bootstrap).await;
}
