//! End to end on a real broker: every record is scored exactly as smartcore would score it,
//! or dead-lettered with its original bytes and key.

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_every_record_and_dead_letters_the_corrupt_ones() {
    common::scenarios::scores_every_record_and_dead_letters_the_corrupt_ones(common::bootstrap())
        .await;
}
