//! How a contract reads and moves time for one implementation.

use std::time::{Duration, SystemTime};

use apiauth_core::clock::{Clock, ManualClock};

/// A store on a `ManualClock` the suite moves, or one that keeps its own clock (Redis),
/// where the suite really waits.
#[derive(Clone)]
pub enum Time {
    /// The store reads this clock.
    Manual(ManualClock),
    /// The store reads the system clock (or its server's).
    Real,
}

impl Time {
    /// Now, as the store sees it.
    pub fn now(&self) -> SystemTime {
        match self {
            Time::Manual(c) => c.now(),
            Time::Real => SystemTime::now(),
        }
    }

    /// Moves the store's time on by `d`.
    pub async fn advance(&self, d: Duration) {
        match self {
            Time::Manual(c) => c.advance(d),
            Time::Real => tokio::time::sleep(d).await,
        }
    }
}
