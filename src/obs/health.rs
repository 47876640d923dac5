//! Liveness and readiness state, written by the pipeline and read by the sidecar.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

/// How long the consumer loop may go without a heartbeat before `/health` says it is stuck.
pub const STALL_AFTER_SECS: u64 = 120;

/// Shared health flags. All methods are lock-free.
#[derive(Debug, Default)]
pub struct Health {
    model_loaded: AtomicBool,
    broker_reachable: AtomicBool,
    joined: AtomicBool,
    input_topic_missing: AtomicBool,
    loop_started: AtomicBool,
    loop_exited: AtomicBool,
    heartbeat_secs: AtomicU64,
    /// Set while outputs fail to be delivered (checked on every acknowledgement).
    output_error: Failing,
    /// Set while records wait for writer schemas the registry cannot be asked for (checked
    /// on every pass of the consumer loop).
    registry_error: Failing,
}

/// Why something fails, or nothing: written often by a hot path, so the message is locked
/// only while there is one or when it changes.
#[derive(Debug, Default)]
struct Failing {
    failing: AtomicBool,
    message: Mutex<Option<String>>,
}

impl Failing {
    fn set(&self, error: Option<String>) {
        if error.is_none() && !self.failing.load(Ordering::Relaxed) {
            return;
        }
        self.failing.store(error.is_some(), Ordering::Relaxed);
        *self.message.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }

    fn get(&self) -> Option<String> {
        if !self.failing.load(Ordering::Relaxed) {
            return None;
        }
        self.message
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The readiness verdict, served as JSON by `/ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// True when every check passes.
    pub ready: bool,
    /// The model artifact is loaded.
    pub model_loaded: bool,
    /// At least one broker connection is up.
    pub broker_reachable: bool,
    /// The consumer has joined its group and received an assignment.
    pub joined_group: bool,
    /// The broker says the input topic does not exist.
    pub input_topic_missing: bool,
    /// The checks that fail, in words.
    pub missing: Vec<String>,
}

fn now_secs() -> u64 {
    (super::epoch_millis() / 1000) as u64
}

impl Health {
    /// Marks the model as loaded.
    pub(crate) fn set_model_loaded(&self, v: bool) {
        self.model_loaded.store(v, Ordering::Relaxed);
    }

    /// Records whether any broker is reachable.
    pub(crate) fn set_broker_reachable(&self, v: bool) {
        self.broker_reachable.store(v, Ordering::Relaxed);
    }

    /// Records whether the consumer holds a group assignment.
    pub(crate) fn set_joined(&self, v: bool) {
        self.joined.store(v, Ordering::Relaxed);
    }

    /// Records whether the broker reported the input topic as unknown.
    /// Records the last failed delivery (`None` once one succeeds again).
    pub(crate) fn set_output_error(&self, error: Option<String>) {
        self.output_error.set(error);
    }

    /// Records why records of new schema ids wait (`None` once none does).
    pub(crate) fn set_registry_error(&self, error: Option<String>) {
        self.registry_error.set(error);
    }

    pub(crate) fn set_input_topic_missing(&self, v: bool) {
        self.input_topic_missing.store(v, Ordering::Relaxed);
    }

    /// Called by the consumer loop on every iteration.
    pub(crate) fn heartbeat(&self) {
        self.loop_started.store(true, Ordering::Relaxed);
        self.heartbeat_secs.store(now_secs(), Ordering::Relaxed);
    }

    /// Called when the consumer loop ends, for whatever reason.
    fn loop_exited(&self) {
        self.loop_exited.store(true, Ordering::Relaxed);
        self.joined.store(false, Ordering::Relaxed);
    }

    /// Liveness: the process is alive unless its consumer loop died or stalled.
    pub fn is_alive(&self) -> bool {
        if self.loop_exited.load(Ordering::Relaxed) {
            return false;
        }
        if !self.loop_started.load(Ordering::Relaxed) {
            return true;
        }
        now_secs().saturating_sub(self.heartbeat_secs.load(Ordering::Relaxed)) < STALL_AFTER_SECS
    }

    /// Readiness, with what is missing.
    pub fn readiness(&self) -> Readiness {
        let model_loaded = self.model_loaded.load(Ordering::Relaxed);
        let broker_reachable = self.broker_reachable.load(Ordering::Relaxed);
        let joined_group = self.joined.load(Ordering::Relaxed);
        let input_topic_missing = self.input_topic_missing.load(Ordering::Relaxed);
        let mut missing: Vec<String> = [
            (!model_loaded, "model not loaded"),
            (!broker_reachable, "no broker reachable"),
            (!joined_group, "consumer has not joined its group"),
            (
                input_topic_missing,
                "the input topic does not exist (create it, or run with --create-topics)",
            ),
        ]
        .into_iter()
        .filter(|(missing, _)| *missing)
        .map(|(_, why)| why.to_string())
        .collect();
        if let Some(error) = self.output_error.get() {
            missing.push(format!("outputs are failing ({error}); retrying"));
        }
        if let Some(error) = self.registry_error.get() {
            missing.push(format!(
                "records of new schema ids wait: the schema registry is unavailable ({error}); retrying"
            ));
        }
        Readiness {
            ready: missing.is_empty() && self.is_alive(),
            model_loaded,
            broker_reachable,
            joined_group,
            input_topic_missing,
            missing,
        }
    }
}

/// Marks the loop as exited when dropped, so a panicking loop is reported too.
pub(crate) struct LoopGuard<'a>(pub &'a Health);

impl Drop for LoopGuard<'_> {
    fn drop(&mut self) {
        self.0.loop_exited();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_names_what_is_missing_and_a_dead_loop_is_not_alive() {
        let health = Health::default();
        assert!(health.is_alive(), "alive before the loop starts");
        let r = health.readiness();
        assert!(!r.ready);
        assert_eq!(r.missing.len(), 3);
        health.set_model_loaded(true);
        health.set_broker_reachable(true);
        health.set_joined(true);
        health.heartbeat();
        assert!(health.readiness().ready);
        health.set_input_topic_missing(true);
        assert!(!health.readiness().ready);
        health.set_input_topic_missing(false);
        health.set_output_error(Some("delivery to predictions failed: timed out".into()));
        let r = health.readiness();
        assert!(!r.ready);
        assert_eq!(
            r.missing,
            ["outputs are failing (delivery to predictions failed: timed out); retrying"]
        );
        health.set_output_error(None);
        health.set_registry_error(Some("cannot connect".into()));
        let r = health.readiness();
        assert!(!r.ready);
        assert_eq!(
            r.missing,
            [
                "records of new schema ids wait: the schema registry is unavailable (cannot connect); retrying"
            ]
        );
        health.set_registry_error(None);
        assert!(
            health.readiness().ready,
            "ready again once a delivery succeeds"
        );
        {
            let _guard = LoopGuard(&health);
        }
        assert!(!health.is_alive());
        assert!(!health.readiness().ready);
    }
}
