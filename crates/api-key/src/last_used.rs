//! Last-used times, written in batches rather than once per request.
//!
//! A key whose stored last-used time is younger than the resolution is not touched at all
//! (no lock, no write): the steady state of a busy key costs nothing. Older ones are queued;
//! the first entry of an empty queue schedules one flush after the flush interval, which
//! writes the whole queue with one store call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use apiauth_core::StoreError;

use crate::record::ApiKeyRecord;
use crate::store::ApiKeyStore;

/// Queue entries beyond this are dropped until the next flush: last-used times are advisory,
/// memory is not.
const MAX_PENDING: usize = 100_000;

pub(crate) struct LastUsed {
    store: Arc<dyn ApiKeyStore>,
    resolution: Duration,
    flush_after: Duration,
    pending: Mutex<HashMap<Arc<str>, SystemTime>>,
}

impl LastUsed {
    pub(crate) fn new(
        store: Arc<dyn ApiKeyStore>,
        resolution: Duration,
        flush_after: Duration,
    ) -> Self {
        Self {
            store,
            resolution,
            flush_after,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Notes an accepted use of `record` at `now`.
    pub(crate) fn note(self: &Arc<Self>, record: &ApiKeyRecord, now: SystemTime) {
        // A stored time in the future (clock skew) counts as recent.
        let recent = record
            .last_used_at
            .is_some_and(|t| now.duration_since(t).map_or(true, |d| d < self.resolution));
        if recent {
            return;
        }
        let first = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let len = pending.len();
            match pending.get_mut(&record.id) {
                Some(t) => *t = (*t).max(now),
                None if len < MAX_PENDING => {
                    pending.insert(record.id.clone(), now);
                }
                None => {}
            }
            len == 0
        };
        if first {
            // Outside a Tokio runtime nothing is scheduled; `flush` still writes the queue.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let me = Arc::clone(self);
                rt.spawn(async move {
                    tokio::time::sleep(me.flush_after).await;
                    if let Err(e) = me.flush().await {
                        tracing::warn!(error = %e, "could not record API key last-used times");
                    }
                });
            }
        }
    }

    /// Writes every queued time with one store call.
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        let batch: Vec<(Arc<str>, SystemTime)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *pending).into_iter().collect()
        };
        if batch.is_empty() {
            return Ok(());
        }
        self.store.record_last_used(&batch).await
    }
}
