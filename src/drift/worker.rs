//! The pipeline's drift windows, counted on a thread of their own. The consumer loop notes
//! each record as it sends its output, gathers the batches' rows and hands them over
//! `HANDOVER_RECORDS` at a time without waiting: the windows are counted, closed and
//! tested beside the next batches, and their reports come back to the loop to publish later.
//!
//! Hidden contracts:
//! - Reports come back in the order the windows closed; [`DriftWorker::close`] returns
//!   every report not yet handed out before the one it closes.
//! - At most [`QUEUED_BATCHES`] hand-overs wait for the thread; the loop waits when the
//!   thread falls further behind, so memory stays bounded (16 hand-overs of 256 rows: 1 MB
//!   at 30 features). A window closes at most `HANDOVER_RECORDS` records late; closing one
//!   (`close`, `close_if_due`) hands over what was gathered first.
//! - On Linux the drift thread runs as `SCHED_BATCH`: woken by a hand-over, it does not take
//!   the loop's core from it, and runs on a free core or at the next tick. Where that cannot
//!   be set, it runs as any thread does.
//! - A hand-over's buffers come back emptied and are gathered into again; new ones are made
//!   only while every other is queued, being counted or on its way back (four in a run of a
//!   million records), each keeping the size of the largest gather.
//! - With drift turned off, or where a thread cannot be started, the windows are counted on
//!   the loop's own thread, as [`DriftMonitor`] does.
//!
//! Counting on the loop's thread cost a quarter of the pipeline's records per second on
//! stock-client input (docs/performance.md).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, channel, sync_channel};
use std::thread::JoinHandle;

use tracing::{debug, warn};

use super::monitor::DriftMonitor;
use super::plan::DriftSettings;
use super::report::DriftReport;
use crate::model::{Model, Predicted};
use crate::obs::metrics::Metrics;

/// Hand-overs that may wait for the drift thread before the loop waits for it. With two, on
/// stock-client input on a 2-core machine shared with the broker, a third of the loop's
/// sleeps were waits on a drift thread that had been kept from a core for a moment
/// (docs/performance.md).
const QUEUED_BATCHES: usize = 16;

/// Records gathered before they are handed over. Each hand-over wakes the drift thread, which
/// costs tens of microseconds of CPU: at low rates, where a batch holds a record or two,
/// waking it for every batch cost 35 µs a record more at 1,000 records/s. A window closes
/// at most this many records late.
const HANDOVER_RECORDS: usize = 256;

/// A model's drift windows, counted on a thread of their own where drift is on.
pub struct DriftWorker {
    counting: Counting,
    gathered: Gathered,
}

/// The records noted and their rows, not yet handed over to the drift thread.
struct Gathered {
    /// The records noted, in order, and their rows (row-major); the notes of the batch
    /// being noted (from `batch_start` on) number their rows from the batch's first.
    buffers: Buffers,
    batch_start: usize,
    /// Features a row holds.
    n: usize,
}

/// What a hand-over carries: the records noted and their rows. The drift thread sends each
/// back emptied, and the loop gathers into it again: the rows of the batch that starts a
/// gather then move in whole, and the loop decodes its next batch into rows emptied before,
/// already at their size. In profiles of the loop on stock-client input, copies
/// (`memmove`) took 2.4 to 2.5% of its samples when every batch's rows were copied, 1.1%
/// now, and 1.0% without drift windows.
#[derive(Default)]
struct Buffers {
    notes: Vec<Note>,
    rows: Vec<f64>,
}

impl Gathered {
    /// Adds the batch being noted: its `rows` (taken, and `rows` left empty), and its
    /// notes' rows numbered from the first row gathered.
    fn add_batch(&mut self, rows: &mut Vec<f64>) {
        let b = &mut self.buffers;
        if b.notes.len() > self.batch_start {
            let first_row = b.rows.len() / self.n.max(1);
            for note in &mut b.notes[self.batch_start..] {
                if let Note::Scored { row, .. } = note {
                    *row += first_row;
                }
            }
            if b.rows.is_empty() {
                // The first batch of a gather moves in whole, and the caller decodes its next
                // batch into the emptied rows: no copy (a whole hand-over, with batches of
                // `HANDOVER_RECORDS` or more).
                std::mem::swap(&mut b.rows, rows);
            } else {
                b.rows.extend_from_slice(rows);
            }
            self.batch_start = b.notes.len();
        }
        rows.clear();
    }

    /// Hands what was gathered over to the drift thread (when there is any), and starts
    /// gathering again, into buffers the thread has emptied where there are some.
    fn hand_over(&mut self, thread: &mut Thread, assigned: &[i32]) {
        self.batch_start = 0;
        if self.buffers.notes.is_empty() {
            return;
        }
        let next = thread.emptied.pop().unwrap_or_default();
        let buffers = std::mem::replace(&mut self.buffers, next);
        let assigned = assigned.to_vec();
        thread.send(Job::Count { buffers, assigned });
    }
}

enum Counting {
    /// On the caller's thread.
    Here(Box<DriftMonitor>),
    /// On a thread of its own.
    Thread(Thread),
}

/// One record of a batch, as noted.
#[derive(Debug, Clone, Copy)]
enum Note {
    Scored {
        partition: i32,
        row: usize,
        predicted: Predicted,
        actual: Option<i32>,
    },
    Invalid {
        partition: i32,
    },
}

/// What the loop asks of the drift thread.
enum Job {
    /// Count a batch's records, closing the windows that fill or grow old.
    Count {
        buffers: Buffers,
        assigned: Vec<i32>,
    },
    /// Close the window if it is old enough.
    CloseIfDue { assigned: Vec<i32> },
    /// Close the window now, then say [`Reply::Done`].
    Close { assigned: Vec<i32> },
}

/// What the drift thread sends back.
enum Reply {
    Report(Box<DriftReport>),
    /// A [`Job::Count`]'s buffers, counted and emptied, for the loop to gather into again.
    Emptied(Buffers),
    /// A [`Job::Close`] is done: every report before it has been sent.
    Done,
}

impl DriftWorker {
    /// Windows for `model` against its reference, on a thread of their own when drift is on.
    pub fn new(model: Arc<Model>, settings: DriftSettings, metrics: Metrics) -> Self {
        let n = model.engine.n_features();
        let with = |counting| DriftWorker {
            counting,
            gathered: Gathered {
                buffers: Buffers::default(),
                batch_start: 0,
                n,
            },
        };
        let here = |model, settings, metrics| {
            with(Counting::Here(Box::new(DriftMonitor::new(
                model, settings, metrics,
            ))))
        };
        if !settings.enabled {
            return here(model, settings, metrics);
        }
        let monitor = DriftMonitor::new(model.clone(), settings.clone(), metrics.clone());
        let (jobs, inbox) = sync_channel(QUEUED_BATCHES);
        let (outbox, replies) = channel();
        let spawned = std::thread::Builder::new()
            .name("driftwood-drift".into())
            .spawn(move || work(monitor, inbox, outbox));
        match spawned {
            Ok(handle) => with(Counting::Thread(Thread {
                jobs: Some(jobs),
                replies,
                emptied: Vec::new(),
                handle: Some(handle),
            })),
            Err(error) => {
                warn!(%error, "could not start the drift thread; counting drift on the loop's");
                here(model, settings, metrics)
            }
        }
    }

    /// Notes a scored record: the `row`-th of the rows `count_batch` is given.
    pub fn note(&mut self, partition: i32, row: usize, predicted: Predicted, actual: Option<i32>) {
        match &mut self.counting {
            Counting::Here(monitor) => monitor.note(partition, row, predicted, actual),
            Counting::Thread(_) => self.gathered.buffers.notes.push(Note::Scored {
                partition,
                row,
                predicted,
                actual,
            }),
        }
    }

    /// Notes a record that could not be scored.
    pub fn note_invalid(&mut self, partition: i32) {
        match &mut self.counting {
            Counting::Here(monitor) => monitor.note_invalid(partition),
            Counting::Thread(_) => self
                .gathered
                .buffers
                .notes
                .push(Note::Invalid { partition }),
        }
    }

    /// Counts the records noted since the last call, with `rows` the batch's rows
    /// (row-major, taken: `rows` is left empty), and gives `publish` the reports of the
    /// windows closed so far, in order. With drift on its thread, the records are handed over
    /// once `HANDOVER_RECORDS` have gathered, and the reports are those the thread has sent
    /// back by now.
    pub fn count_batch(
        &mut self,
        rows: &mut Vec<f64>,
        assigned: &[i32],
        publish: impl FnMut(DriftReport),
    ) {
        let thread = match &mut self.counting {
            Counting::Here(monitor) => {
                monitor.count_batch(rows, assigned, publish);
                return rows.clear();
            }
            Counting::Thread(thread) => thread,
        };
        self.gathered.add_batch(rows);
        if self.gathered.buffers.notes.len() >= HANDOVER_RECORDS {
            self.gathered.hand_over(thread, assigned);
        }
        thread.ready().into_iter().for_each(publish);
    }

    /// The reports of the windows closed so far, and the window's own if it is old enough;
    /// with drift on its thread, a window closed by age now comes with a later call.
    pub fn close_if_due(&mut self, assigned: &[i32]) -> Vec<DriftReport> {
        match &mut self.counting {
            Counting::Here(monitor) => monitor.close_if_due(assigned).into_iter().collect(),
            Counting::Thread(thread) => {
                self.gathered.hand_over(thread, assigned);
                let assigned = assigned.to_vec();
                thread.send(Job::CloseIfDue { assigned });
                thread.ready()
            }
        }
    }

    /// Every report not yet handed out, then the window's own, closed now (unless empty).
    pub fn close(&mut self, assigned: &[i32]) -> Vec<DriftReport> {
        match &mut self.counting {
            Counting::Here(monitor) => monitor.close(assigned).into_iter().collect(),
            Counting::Thread(thread) => {
                self.gathered.hand_over(thread, assigned);
                let assigned = assigned.to_vec();
                thread.send(Job::Close { assigned });
                thread.until_done()
            }
        }
    }
}

/// The drift thread, as the loop holds it.
struct Thread {
    /// None once dropped, which ends the thread.
    jobs: Option<SyncSender<Job>>,
    replies: Receiver<Reply>,
    /// Buffers the thread has sent back, to gather into.
    emptied: Vec<Buffers>,
    handle: Option<JoinHandle<()>>,
}

impl Thread {
    fn send(&mut self, job: Job) {
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        if !matches!(sent, Some(Ok(()))) {
            self.ended();
        }
    }

    /// The reports already sent back.
    fn ready(&mut self) -> Vec<DriftReport> {
        let mut reports = Vec::new();
        loop {
            match self.replies.try_recv() {
                Ok(Reply::Report(report)) => reports.push(*report),
                Ok(Reply::Emptied(buffers)) => self.emptied.push(buffers),
                Ok(Reply::Done) => {}
                Err(TryRecvError::Empty) => return reports,
                Err(TryRecvError::Disconnected) => self.ended(),
            }
        }
    }

    /// The reports sent back until the thread says it is done with a [`Job::Close`].
    fn until_done(&mut self) -> Vec<DriftReport> {
        let mut reports = Vec::new();
        loop {
            match self.replies.recv() {
                Ok(Reply::Report(report)) => reports.push(*report),
                Ok(Reply::Emptied(buffers)) => self.emptied.push(buffers),
                Ok(Reply::Done) => return reports,
                Err(_) => self.ended(),
            }
        }
    }

    /// The thread ended while the loop still needs it: only a panic ends it, passed on.
    fn ended(&mut self) -> ! {
        self.jobs = None;
        match self.handle.take().map(JoinHandle::join) {
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            _ => panic!("the drift thread ended"),
        }
    }
}

impl Drop for Thread {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// The drift thread: counts what the loop hands over until the loop lets go.
fn work(mut monitor: DriftMonitor, inbox: Receiver<Job>, outbox: Sender<Reply>) {
    yield_to_the_loop();
    let send = |report: DriftReport| {
        let _ = outbox.send(Reply::Report(Box::new(report)));
    };
    for job in inbox {
        match job {
            Job::Count {
                mut buffers,
                assigned,
            } => {
                for note in buffers.notes.drain(..) {
                    match note {
                        Note::Scored {
                            partition,
                            row,
                            predicted,
                            actual,
                        } => monitor.note(partition, row, predicted, actual),
                        Note::Invalid { partition } => monitor.note_invalid(partition),
                    }
                }
                monitor.count_batch(&buffers.rows, &assigned, send);
                buffers.rows.clear();
                let _ = outbox.send(Reply::Emptied(buffers));
            }
            Job::CloseIfDue { assigned } => {
                monitor.close_if_due(&assigned).into_iter().for_each(send)
            }
            Job::Close { assigned } => {
                monitor.close(&assigned).into_iter().for_each(send);
                let _ = outbox.send(Reply::Done);
            }
        }
    }
}

/// Makes the calling thread a batch thread (Linux's `SCHED_BATCH`): a thread that wakes it
/// does not lose its core to it. Counting drift is throughput work beside the loop; woken at
/// every hand-over as an ordinary thread, it took the loop's core from it about 75 times a
/// second on stock-client input (docs/performance.md).
///
/// Not `SCHED_IDLE`, though it gave the loop a contended core sooner: an idle thread runs
/// only when nothing else in its cgroup wants the core, and it cannot be raised again
/// without privileges. With two busy processes beside it, the loop, waiting on a full
/// hand-over queue, scored 9,000 to 16,000 records/s where it scored 346,000 to 387,000
/// with this policy (docs/performance.md).
fn yield_to_the_loop() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` outlives the call; pid 0 is the calling thread.
        let set = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if set != 0 {
            let error = std::io::Error::last_os_error();
            debug!(%error, "the drift thread runs as an ordinary thread");
        }
    }
}
