//! Waiting for the producer's delivery reports without spinning.
//!
//! rust-rdkafka's `BaseProducer::poll(timeout)` serves events until the whole timeout has
//! passed, and hands librdkafka what is left of it in whole milliseconds: with less than a
//! millisecond left it polls without waiting, again and again until the time is up. A poll
//! of 1 ms never waited at all. The sink's waits for acknowledgements were such polls: on
//! generator input the loop spent 5 to 15% of its time, and the pass-through 40 to 45%,
//! spinning on the clock (a fifth of the loop's CPU samples were clock reads), on cores the
//! broker and librdkafka's threads needed (docs/performance.md).
//!
//! So the sink waits here instead. librdkafka writes a byte to a pipe when an event arrives
//! on the producer's empty queue (`rd_kafka_queue_io_event_enable`); the sink waits for the
//! pipe with poll(2), then serves what came with polls that do not wait.
//!
//! Hidden contracts:
//! - librdkafka writes at most one byte between two polls of the queue, when an event makes
//!   the empty queue non-empty. A waiter must take what the pipe holds, poll the queue until
//!   it is empty, and only then wait: an event after that last poll writes a byte. A byte
//!   taken after the polls may stand for an event they already served; serving again costs a
//!   poll that finds nothing.
//! - Both ends of the pipe are non-blocking. A pipe filled by wake-ups nobody waited for (64
//!   KiB of them) makes librdkafka's write fail, which it ignores; it never blocks its thread.
//! - The wake-ups are turned off before the pipe closes, and the producer outlives this (the
//!   sink declares it after), so librdkafka never writes to a closed or reused descriptor.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use rdkafka::bindings as rdsys;

/// The wake-ups of one client's main queue (where a producer's delivery reports arrive).
pub(crate) struct Wakeup {
    queue: *mut rdsys::rd_kafka_queue_t,
    read: OwnedFd,
    /// librdkafka writes here; closed only after it stopped.
    _write: OwnedFd,
}

// SAFETY: a librdkafka queue handle may be used from any thread, and this one is only used
// to turn the wake-ups off when dropped; the pipe's descriptors are plain integers.
unsafe impl Send for Wakeup {}
// SAFETY: as above; reading and polling a descriptor from several threads is sound.
unsafe impl Sync for Wakeup {}

impl Wakeup {
    /// Turns wake-ups on for `client`'s main queue. `client` must outlive the value.
    pub(crate) fn new(client: *mut rdsys::rd_kafka_t) -> io::Result<Self> {
        let (read, write) = nonblocking_pipe()?;
        let byte = 1u8;
        // SAFETY: `client` is a live client. The queue reference is released in `drop`, and
        // librdkafka copies the payload.
        let queue = unsafe {
            let queue = rdsys::rd_kafka_queue_get_main(client);
            rdsys::rd_kafka_queue_io_event_enable(
                queue,
                write.as_raw_fd(),
                (&raw const byte).cast(),
                1,
            );
            queue
        };
        Ok(Wakeup {
            queue,
            read,
            _write: write,
        })
    }

    /// Takes the wake-ups written so far; whether there was any.
    pub(crate) fn take(&self) -> bool {
        let mut buffer = [0u8; 64];
        let mut any = false;
        loop {
            // SAFETY: the buffer is valid for its length; the descriptor is open.
            let read = unsafe {
                libc::read(
                    self.read.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                )
            };
            if read <= 0 {
                return any; // Empty (EAGAIN), or nothing more to take.
            }
            any = true;
        }
    }

    /// Sleeps until a wake-up is written or `timeout` (rounded up to a millisecond) passes.
    pub(crate) fn wait(&self, timeout: Duration) {
        let mut pipe = libc::pollfd {
            fd: self.read.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = timeout
            .as_micros()
            .div_ceil(1000)
            .clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd. An interrupted or failed wait returns early, and the
        // caller looks at the queue again either way.
        unsafe { libc::poll(&mut pipe, 1, millis) };
    }
}

impl Drop for Wakeup {
    fn drop(&mut self) {
        // SAFETY: the client is still alive (see the module's contracts). Turned off under
        // the queue's lock, so no write is under way once this returns.
        unsafe {
            rdsys::rd_kafka_queue_io_event_enable(self.queue, -1, std::ptr::null(), 0);
            rdsys::rd_kafka_queue_destroy(self.queue);
        }
    }
}

/// A pipe whose ends are non-blocking and closed on exec.
fn nonblocking_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both were just opened, and are owned from here on.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    for fd in [&read, &write] {
        let fd = fd.as_raw_fd();
        // SAFETY: fcntl on an open descriptor.
        let set = unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
                && libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) == 0
        };
        if !set {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((read, write))
}

#[cfg(test)]
mod tests {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    use super::*;
    use crate::kafka::testing::{cluster, producer_config};

    #[test]
    fn a_delivery_report_wakes_a_waiter_and_waits_in_the_queue_to_be_served() {
        let cluster = cluster(&["out"], 1);
        let producer: BaseProducer = producer_config(&cluster.bootstrap_servers())
            .create()
            .unwrap();
        let wakeup = Wakeup::new(producer.client().native_ptr()).unwrap();
        producer.poll(Duration::ZERO);
        wakeup.take();

        let record = BaseRecord::<(), [u8]>::to("out").payload(&b"x"[..]);
        producer.send(record).map_err(|(e, _)| e).unwrap();
        // Returns at once if the report's wake-up is written, else after the timeout.
        wakeup.wait(Duration::from_secs(30));

        assert!(wakeup.take(), "the delivery report wrote a wake-up");
        assert!(!wakeup.take(), "and only one");
        assert!(
            producer.in_flight_count() > 0,
            "the report waits to be served"
        );
        producer.poll(Duration::ZERO);
        assert_eq!(
            producer.in_flight_count(),
            0,
            "served by a poll that does not wait"
        );
    }
}
