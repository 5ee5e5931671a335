//! Test support for the apiauth crates. Not published.
//!
//! - [`send`] and [`Seen`]: a request through a router, and the answer as a client sees it.
//! - [`LogCapture`]: the `tracing` events a request emitted on this thread.
//!
//! # Why log capture lives here
//!
//! Audit tests must see every event the code under test emits on their thread. `tracing`
//! caches, per callsite, whether any dispatcher is interested, and that cache is rebuilt
//! whenever a dispatcher is registered. With one scoped subscriber per test
//! (`tracing::subscriber::set_default`) and tests running in parallel, a callsite registered
//! on one thread while another thread registers its subscriber can keep a stale "never"
//! interest: the test then sees an empty log. That happened in CI.
//!
//! [`LogCapture`] avoids the race by construction: one process-wide subscriber, installed once,
//! that is interested in every event at every level, so no callsite is ever cached as "never".
//! It hands each event to the capture active on the emitting thread (if any), both as the
//! `fmt` text a user would see and as structured fields. Tests that capture run their code on
//! their own thread (the default current-thread `#[tokio::test]` runtime).

mod seen;

pub use seen::{Seen, send};

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, Once};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// One event as structured data: target, level and every field rendered as text. String
/// fields are recorded without quotes; other values through `Debug` (so `%x` gives `Display`).
#[derive(Clone, Debug)]
pub struct CapturedEvent {
    pub target: String,
    pub level: Level,
    pub fields: BTreeMap<String, String>,
}

impl CapturedEvent {
    /// The value of field `name`, if the event has it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct Sink {
    text: Vec<u8>,
    events: Vec<CapturedEvent>,
}

thread_local! {
    static ACTIVE: RefCell<Vec<Arc<Mutex<Sink>>>> = const { RefCell::new(Vec::new()) };
}

fn with_active(f: impl FnOnce(&mut Sink)) {
    // `try_with`: events emitted while a thread is being torn down are simply dropped.
    let _ = ACTIVE.try_with(|a| {
        if let Some(sink) = a.borrow().last() {
            f(&mut sink.lock().unwrap_or_else(|p| p.into_inner()));
        }
    });
}

/// Captures every `tracing` event emitted on the current thread until dropped.
///
/// Captures nest: the innermost one receives the events.
pub struct LogCapture {
    sink: Arc<Mutex<Sink>>,
}

impl LogCapture {
    /// Starts capturing on this thread (installing the process-wide subscriber the first time).
    pub fn start() -> Self {
        install();
        let sink = Arc::new(Mutex::new(Sink::default()));
        ACTIVE.with(|a| a.borrow_mut().push(sink.clone()));
        Self { sink }
    }

    /// Everything captured so far, formatted by `tracing_subscriber::fmt` (no colours).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().text).into_owned()
    }

    /// Like [`text`](Self::text), and clears the text buffer.
    pub fn take_text(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.lock().text)).into_owned()
    }

    /// Every event captured so far.
    pub fn events(&self) -> Vec<CapturedEvent> {
        self.lock().events.clone()
    }

    /// Like [`events`](Self::events), and clears the event list.
    pub fn take_events(&self) -> Vec<CapturedEvent> {
        std::mem::take(&mut self.lock().events)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sink> {
        self.sink.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        let _ = ACTIVE.try_with(|a| {
            let mut a = a.borrow_mut();
            if let Some(i) = a.iter().rposition(|s| Arc::ptr_eq(s, &self.sink)) {
                a.remove(i);
            }
        });
    }
}

impl fmt::Debug for LogCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogCapture").finish_non_exhaustive()
    }
}

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(ThreadWriter),
            )
            .with(Structured)
            .with(tracing_subscriber::filter::LevelFilter::TRACE);
        // A test binary that installed its own global subscriber keeps it; its captures then
        // see nothing, which the capturing test's own assertions will show.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    // Recompute every callsite's interest against the subscriber now installed.
    tracing::callsite::rebuild_interest_cache();
}

/// Writes `fmt` output into the capture active on the writing thread, or nowhere.
struct ThreadWriter;

impl<'a> MakeWriter<'a> for ThreadWriter {
    type Writer = ThreadWriter;
    fn make_writer(&'a self) -> Self::Writer {
        ThreadWriter
    }
}

impl io::Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        with_active(|s| s.text.extend_from_slice(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Records each event's fields into the capture active on the emitting thread.
struct Structured;

impl<S: Subscriber> tracing_subscriber::Layer<S> for Structured {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let active = ACTIVE.try_with(|a| !a.borrow().is_empty()).unwrap_or(false);
        if !active {
            return;
        }
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        let meta = event.metadata();
        let captured = CapturedEvent {
            target: meta.target().to_owned(),
            level: *meta.level(),
            fields: fields.0,
        };
        with_active(|s| s.events.push(captured));
    }
}

struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_only_its_own_thread_and_nests() {
        let outer = LogCapture::start();
        tracing::info!(target: "t", reason = "one", n = 2, "hello");
        {
            let inner = LogCapture::start();
            tracing::trace!(target: "t", reason = "two");
            assert_eq!(inner.events()[0].field("reason"), Some("two"));
            assert!(inner.text().contains("reason=\"two\""));
        }
        std::thread::spawn(|| tracing::info!(target: "t", reason = "elsewhere"))
            .join()
            .unwrap();
        tracing::info!(target: "t", reason = "three");
        let events = outer.take_events();
        let reasons: Vec<_> = events.iter().filter_map(|e| e.field("reason")).collect();
        assert_eq!(reasons, ["one", "three"]);
        assert_eq!(events[0].field("n"), Some("2"));
        let text = outer.take_text();
        assert!(
            text.contains("hello") && !text.contains("elsewhere"),
            "{text}"
        );
        assert!(outer.text().is_empty());
    }
}
