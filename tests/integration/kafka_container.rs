//! The end-to-end scenario against Apache Kafka in Docker, through testcontainers. Needs a
//! Docker engine: `cargo test --features testcontainers --test integration kafka_container`.

use testcontainers_modules::kafka::apache;
use testcontainers_modules::testcontainers::runners::AsyncRunner;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_every_record_and_dead_letters_the_corrupt_ones_on_apache_kafka() {
    crate::common::init_logging();
    let kafka = apache::Kafka::default()
        .start()
        .await
        .expect("starting Apache Kafka needs a running Docker engine");
    let port = kafka
        .get_host_port_ipv4(apache::KAFKA_PORT)
        .await
        .expect("Kafka port");
    let bootstrap = format!("127.0.0.1:{port}");
    crate::end_to_end::scores_every_record_and_dead_letters_the_corrupt_ones_on(&bootstrap).await;
}
