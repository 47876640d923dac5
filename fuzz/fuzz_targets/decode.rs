//! Framing, Avro decoding and feature mapping of one message, on arbitrary bytes.
#![no_main]

#[path = "../check.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
