//! The throughput runs' input, written two ways. The generator is one producer sending as fast
//! as it can: large batches. Stock clients (many services, each with a client's default
//! settings, each sending at its own pace) write small batches, uncompressed, and a consumer
//! reading them gets fewer records per fetched byte and per request; both are measured.

use std::time::Instant;

use crate::config::tools::ProduceConfig;
use crate::error::{Error, Result};
use crate::tools::produce::produce;

/// How the stock-client input is written.
#[derive(Debug, Clone, Copy)]
pub(super) struct StockInput {
    /// Producers, each its own client with librdkafka's defaults (the settings
    /// confluent-kafka and most librdkafka-based clients start from: `linger.ms=5`,
    /// `acks=all`, no compression).
    pub producers: usize,
    /// Records per second, all producers together.
    pub rate: f64,
}

/// Writes `records` records to `topic` as `input.producers` stock clients at `input.rate`
/// records/s between them; returns the rate achieved.
pub(super) fn write_stock(
    brokers: &str,
    topic: &str,
    records: usize,
    input: StockInput,
) -> Result<f64> {
    let started = Instant::now();
    let producers: Vec<_> = (0..input.producers)
        .map(|i| {
            // Each producer's records start at id 0: ids repeat across producers, which
            // matters to nothing the bench measures.
            let share = records / input.producers + usize::from(i < records % input.producers);
            let mut config = ProduceConfig::new(brokers, topic, share);
            config.rate = input.rate / input.producers as f64;
            std::thread::spawn(move || produce(&config))
        })
        .collect();
    for producer in producers {
        producer
            .join()
            .map_err(|_| Error::tool("bench", "a stock producer panicked"))??;
    }
    Ok(records as f64 / started.elapsed().as_secs_f64())
}
