//! Following a model's registry pointer while an instance runs. A thread of its own notices
//! the pointer change (a file notification on the model's directory, or at the latest the
//! next poll: a network or projected volume may deliver no notifications), loads and checks
//! the version it names off the scoring path, and hands it to the consumer loop, which swaps
//! it in between batches. A version that cannot serve is refused, said in the log and the
//! metrics, and the old version keeps serving.
//!
//! The same thread follows the model's rollout (`super::rollout`): while one runs beside the
//! version serving here, it loads the candidate and hands over each stage, and says when the
//! rollout ends ([`CanaryChange`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use notify::Watcher;
use tracing::{error, info, warn};

use super::Model;
use super::registry::Registry;
use super::rollout::Rollout;
use crate::error::Result;
use crate::obs::metrics::Metrics;

/// A model version loaded and checked, with whatever else the caller built for it (the
/// consumer loop's input decoder).
pub struct Loaded<T> {
    /// The model.
    pub model: Arc<Model>,
    /// What the caller's loader built beside it.
    pub extra: T,
    /// Whether the pointer moved forward to it (a promotion: the version it replaces is the
    /// first to roll back to), rather than back (a rollback).
    pub promoted: bool,
}

/// A candidate to serve beside the serving version, to the running stage's share of the
/// keys.
pub struct Canary<T> {
    pub model: Arc<Model>,
    pub extra: T,
    pub rollout: Rollout,
}

/// What changed in the model's rollout, in order.
pub enum CanaryChange<T> {
    /// Serve this candidate (in place of any other).
    Start(Canary<T>),
    /// The rollout moved to a new stage (its share in it).
    Stage(Rollout),
    /// The rollout ended: the serving version takes every record.
    Off,
}

/// Loads and checks one version of the model (the same checks as at start), with what the
/// caller builds beside it.
pub type Loader<T> = Box<dyn Fn(&str) -> Result<(Arc<Model>, T)> + Send>;

/// The watching thread's settings.
pub struct WatchSettings {
    /// The registry.
    pub registry: Registry,
    /// The model followed.
    pub name: String,
    /// The version serving when the watch starts.
    pub serving: String,
    /// Longest time between two reads of the pointer.
    pub interval: Duration,
}

/// A running watch: [`ModelWatch::take`] hands over each new version once.
pub struct ModelWatch<T> {
    loaded: Receiver<Loaded<T>>,
    canary: Receiver<CanaryChange<T>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<T: Send + 'static> ModelWatch<T> {
    /// Starts watching. Fails only when the thread cannot start; a directory that cannot be
    /// watched leaves polling alone, with a warning.
    pub fn start(settings: WatchSettings, load: Loader<T>, metrics: Metrics) -> Result<Self> {
        let (send, loaded) = channel();
        let (send_canary, canary) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("model-watch".into())
            .spawn(move || follow(settings, load, metrics, (send, send_canary), &flag))
            .map_err(crate::error::Error::start("the model watch"))?;
        Ok(ModelWatch {
            loaded,
            canary,
            stop,
            thread: Some(thread),
        })
    }

    /// The newest version loaded since the last call, if any.
    pub fn take(&self) -> Option<Loaded<T>> {
        self.loaded.try_iter().last()
    }

    /// The rollout's changes since the last call, in order.
    pub fn take_canary(&self) -> Vec<CanaryChange<T>> {
        self.canary.try_iter().collect()
    }
}

impl<T> Drop for ModelWatch<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The watching thread: wakes on a notification or after `interval`, reads the pointer and
/// loads a version it has not served or refused yet, then reads the rollout.
fn follow<T>(
    settings: WatchSettings,
    load: Loader<T>,
    metrics: Metrics,
    (send, send_canary): (Sender<Loaded<T>>, Sender<CanaryChange<T>>),
    stop: &AtomicBool,
) {
    let (wake, woken) = channel();
    let dir = settings.registry.root().join(&settings.name);
    // Kept alive for the loop; None when notifications are unavailable.
    let _watcher = notifications(&dir, wake);
    let mut pointer = Followed::new(settings.serving.clone(), false);
    let mut canary = Followed::new(String::new(), true);
    let mut revision = None::<u64>;
    // Short sleeps, so that a stopping instance is not held up by a long interval.
    let tick = settings.interval.min(Duration::from_millis(200));
    let mut waited = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        let notified = woken.recv_timeout(tick).is_ok();
        waited += tick;
        if !notified && waited < settings.interval {
            continue;
        }
        waited = Duration::ZERO;
        metrics.serving.model_pointer_reads.inc();
        if let Some((version, promoted)) = pointed_version(&settings, &pointer.serving) {
            let loaded = pointer.load(&version, &load, (&settings.name, &metrics));
            let sent = loaded.map(|(model, extra)| {
                send.send(Loaded {
                    model,
                    extra,
                    promoted,
                })
            });
            if sent.is_some_and(|s| s.is_err()) {
                return;
            }
        }
        let change = follow_rollout(
            &settings,
            &pointer.serving,
            (&mut canary, &mut revision),
            &load,
            &metrics,
        );
        if change.is_some_and(|c| send_canary.send(c).is_err()) {
            return;
        }
    }
}

/// A version followed: the one serving, and the last refused (not loaded again).
struct Followed {
    serving: String,
    refused: Option<String>,
    /// Whether it is a rollout's candidate (else the version the pointer names).
    candidate: bool,
}

impl Followed {
    fn new(serving: String, candidate: bool) -> Self {
        Followed {
            serving,
            refused: None,
            candidate,
        }
    }

    /// Loads `version` unless it serves or was refused; said in the log and the metrics.
    fn load<T>(
        &mut self,
        version: &str,
        load: &Loader<T>,
        (name, metrics): (&str, &Metrics),
    ) -> Option<(Arc<Model>, T)> {
        if version == self.serving || self.refused.as_deref() == Some(version) {
            return None;
        }
        let outcome = |o: &str| metrics.serving.model_reloads.with_label_values(&[o]).inc();
        match load(version) {
            Ok(loaded) if self.candidate => {
                info!(model = %name, candidate = %version, "the rollout's candidate loaded; serving it beside the serving version from the next batch");
                outcome("loaded");
                self.serving = version.to_owned();
                self.refused = None;
                Some(loaded)
            }
            Ok(loaded) => {
                info!(model = %name, from = %self.serving, to = %version, "new version loaded; swapping it in between batches");
                outcome("loaded");
                self.serving = version.to_owned();
                self.refused = None;
                Some(loaded)
            }
            Err(e) => {
                match self.candidate {
                    true => {
                        error!(model = %name, %version, error = %e, "refusing the rollout's candidate; the serving version takes every record")
                    }
                    false => {
                        error!(model = %name, %version, error = %e, serving = %self.serving, "refusing the promoted version; the serving version stays")
                    }
                }
                outcome("refused");
                self.refused = Some(version.to_owned());
                None
            }
        }
    }
}

/// The rollout's change since the last read: a candidate to start (loaded), a new stage, or
/// the end. A rollout counts only beside the version it began beside (`serving`).
fn follow_rollout<T>(
    settings: &WatchSettings,
    serving: &str,
    (canary, revision): (&mut Followed, &mut Option<u64>),
    load: &Loader<T>,
    metrics: &Metrics,
) -> Option<CanaryChange<T>> {
    let rollout = match settings.registry.rollout(&settings.name) {
        Ok(r) => r.filter(|r| r.baseline == serving && r.running()),
        Err(e) => {
            warn!(model = %settings.name, error = %e, "cannot read the model's rollout; serving as before");
            return None;
        }
    };
    match (rollout, *revision) {
        (None, None) => None,
        (None, Some(_)) => {
            *revision = None;
            *canary = Followed::new(String::new(), true);
            Some(CanaryChange::Off)
        }
        (Some(r), Some(_)) if r.candidate == canary.serving => (*revision != Some(r.revision))
            .then(|| {
                *revision = Some(r.revision);
                CanaryChange::Stage(r)
            }),
        (Some(rollout), _) => {
            let (model, extra) =
                canary.load(&rollout.candidate, load, (&settings.name, metrics))?;
            *revision = Some(rollout.revision);
            Some(CanaryChange::Start(Canary {
                model,
                extra,
                rollout,
            }))
        }
    }
}

/// The version the pointer names, and whether it was promoted over `serving`; `None` (said
/// in the log) when the pointer cannot be read.
fn pointed_version(settings: &WatchSettings, serving: &str) -> Option<(String, bool)> {
    match settings.registry.pointer(&settings.name) {
        Ok(Some(pointer)) => {
            let promoted = pointer.previous.first().map(String::as_str) == Some(serving);
            Some((pointer.version, promoted))
        }
        Ok(None) => {
            warn!(model = %settings.name, "the model's pointer is gone; the serving version stays");
            None
        }
        Err(e) => {
            warn!(model = %settings.name, error = %e, "cannot read the model's pointer; the serving version stays");
            None
        }
    }
}

/// File notifications on `dir` (the pointer's directory: a rename over the pointer, or a
/// ConfigMap's symlink swap, shows there), each sent to `wake`.
fn notifications(dir: &std::path::Path, wake: Sender<()>) -> Option<notify::RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| {
        // Not accesses: reading the pointer is one, and waking on it would read it again,
        // round and round (measured: 2.3 µs of CPU per record scored before this filter).
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = wake.send(());
        }
    };
    let watched = notify::recommended_watcher(handler).and_then(|mut watcher| {
        watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
        Ok(watcher)
    });
    match watched {
        Ok(watcher) => Some(watcher),
        Err(e) => {
            warn!(dir = %dir.display(), error = %e, "no file notifications; polling the pointer only");
            None
        }
    }
}

#[cfg(test)]
mod tests;
