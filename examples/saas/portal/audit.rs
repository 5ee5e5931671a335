//! The recent audit events, for the portal's audit page: a bounded ring fed by a `tracing`
//! layer that watches target [`apiauth::audit::TARGET`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

/// Events the ring keeps; older ones fall off.
const CAPACITY: usize = 2_000;

static RING: Mutex<VecDeque<AuditEntry>> = Mutex::new(VecDeque::new());

/// One audit event: its time and its fields (none of which holds a secret).
#[derive(Clone, Debug)]
pub struct AuditEntry {
    pub at: SystemTime,
    pub fields: BTreeMap<&'static str, String>,
}

impl AuditEntry {
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }
}

/// The `tracing` layer that fills the ring.
pub struct AuditRingLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AuditRingLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != apiauth::audit::TARGET {
            return;
        }
        let mut v = Fields(BTreeMap::new());
        event.record(&mut v);
        let mut ring = RING.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() >= CAPACITY {
            ring.pop_front();
        }
        ring.push_back(AuditEntry {
            at: SystemTime::now(),
            fields: v.0,
        });
    }
}

struct Fields(BTreeMap<&'static str, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
}

/// The newest `limit` events that `keep` accepts, newest first.
pub fn recent(limit: usize, keep: impl Fn(&AuditEntry) -> bool) -> Vec<AuditEntry> {
    let ring = RING.lock().unwrap_or_else(|p| p.into_inner());
    ring.iter()
        .rev()
        .filter(|e| keep(e))
        .take(limit)
        .cloned()
        .collect()
}
