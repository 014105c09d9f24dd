//! How many parts are in flight: a fixed number, or one that grows while
//! the measured throughput grows and backs off when the server throttles.
//!
//! [`Pace`] is the decision, a pure function of what was measured;
//! [`Limiter`] holds the slots the parts take, one per attempt in flight.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How often the throughput is measured while the pace adapts.
pub(crate) const TICK: Duration = Duration::from_millis(250);

/// Growth is kept when the throughput rose by more than this share.
const GAIN: f64 = 0.10;

/// Intervals without gain after which growth stops.
const FLAT_INTERVALS: u32 = 2;

/// Ticks averaged into one measured interval: a part's body goes into the
/// socket's buffers in bursts, so one tick alone is noisy.
const WINDOW_TICKS: u32 = 2;

/// Intervals left unmeasured after a change: new connections first fill
/// their socket buffers at once, which would read as a burst of throughput.
const SETTLE_INTERVALS: u32 = 1;

/// The adaptive decision.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pace {
    limit: usize,
    ceiling: usize,
    /// Best throughput seen, bytes per second.
    best: f64,
    flat: u32,
    settling: u32,
    /// Rates of the ticks of the interval being measured.
    sum: f64,
    ticks: u32,
}

impl Pace {
    /// Starts at `start` parts in flight, never above `ceiling`.
    pub(crate) fn new(start: usize, ceiling: usize) -> Self {
        Self {
            limit: start.min(ceiling).max(1),
            ceiling: ceiling.max(1),
            best: 0.0,
            flat: 0,
            settling: SETTLE_INTERVALS,
            sum: 0.0,
            ticks: 0,
        }
    }

    /// The parts in flight allowed now.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// After a tick that sent `rate` bytes per second with `busy` parts in
    /// flight. Every [`WINDOW_TICKS`] ticks make an interval: the count
    /// doubles while the interval's rate grows by more than [`GAIN`], and
    /// stops after [`FLAT_INTERVALS`] without. An interval in which the
    /// limit was not all in use says nothing about more, nor do the
    /// [`SETTLE_INTERVALS`] after a change.
    pub(crate) fn measured(&mut self, rate: f64, busy: usize) -> usize {
        if busy < self.limit {
            self.ticks = WINDOW_TICKS + 1; // the interval does not count
        }
        self.sum += rate;
        self.ticks += 1;
        if self.ticks < WINDOW_TICKS {
            return self.limit;
        }
        let whole = self.ticks == WINDOW_TICKS;
        let rate = self.sum / f64::from(WINDOW_TICKS);
        self.sum = 0.0;
        self.ticks = 0;
        if !whole {
            return self.limit;
        }
        if self.settling > 0 {
            self.settling -= 1;
            return self.limit;
        }
        if self.flat >= FLAT_INTERVALS {
            self.best = self.best.max(rate);
            return self.limit;
        }
        if rate > self.best * (1.0 + GAIN) {
            self.best = rate;
            self.flat = 0;
            self.limit = (self.limit * 2).min(self.ceiling);
            self.settling = SETTLE_INTERVALS;
        } else {
            self.flat += 1;
        }
        self.limit
    }

    /// A part was throttled (429) while `busy` other parts were in flight:
    /// that many is what the server takes. The limit drops to it and never
    /// grows past it again.
    pub(crate) fn throttled(&mut self, busy: usize) -> usize {
        self.limit = self.limit.min(busy).max(1);
        self.ceiling = self.limit;
        self.limit
    }
}

/// The slots of one upload and, when it adapts, the decision that sizes them.
pub(crate) struct Pacer {
    limiter: Arc<Limiter>,
    adaptive: Option<Mutex<Pace>>,
}

impl Pacer {
    /// Exactly `parts` in flight.
    pub(crate) fn fixed(parts: usize) -> Self {
        Self {
            limiter: Limiter::new(parts),
            adaptive: None,
        }
    }

    /// From `start` parts in flight, adapting up to `ceiling`.
    pub(crate) fn adaptive(start: usize, ceiling: usize) -> Self {
        let pace = Pace::new(start, ceiling);
        Self {
            limiter: Limiter::new(pace.limit()),
            adaptive: Some(Mutex::new(pace)),
        }
    }

    /// Whether the count adapts.
    pub(crate) fn is_adaptive(&self) -> bool {
        self.adaptive.is_some()
    }

    /// Waits for a slot for one attempt.
    pub(crate) async fn slot(&self) -> Slot {
        self.limiter.acquire().await
    }

    /// An interval sent `rate` bytes per second.
    pub(crate) fn measured(&self, rate: f64) {
        self.decide(|pace, busy| pace.measured(rate, busy));
    }

    /// An attempt was throttled; its slot is already given back.
    pub(crate) fn throttled(&self) {
        self.decide(|pace, busy| {
            let limit = pace.throttled(busy);
            tracing::info!(parts_in_flight = limit, "throttled: fewer parts in flight");
            limit
        });
    }

    fn decide(&self, decision: impl FnOnce(&mut Pace, usize) -> usize) {
        if let Some(pace) = &self.adaptive {
            let mut pace = pace.lock().unwrap_or_else(|p| p.into_inner());
            let before = pace.limit();
            let limit = decision(&mut pace, self.limiter.busy());
            if limit != before {
                tracing::debug!(parts_in_flight = limit, "pace");
                self.limiter.set_limit(limit);
            }
        }
    }
}

/// Slots for parts in flight; the count can change while parts run. Slots
/// are granted in the order they are asked for.
pub(crate) struct Limiter {
    slots: Arc<Semaphore>,
    /// The limit, and slots to take out of use as they come back.
    state: Mutex<(usize, usize)>,
    busy: AtomicUsize,
}

/// One part's slot, for one attempt.
pub(crate) struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    limiter: Arc<Limiter>,
}

impl Limiter {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(limit)),
            state: Mutex::new((limit, 0)),
            busy: AtomicUsize::new(0),
        })
    }

    /// Waits for a slot.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Slot {
        let permit = self.slots.clone().acquire_owned().await.ok();
        self.busy.fetch_add(1, Ordering::Relaxed);
        Slot {
            permit,
            limiter: self.clone(),
        }
    }

    /// Parts in flight now.
    pub(crate) fn busy(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }

    /// Changes the number of slots; slots in use beyond a lower limit are
    /// taken out as they come back.
    pub(crate) fn set_limit(&self, limit: usize) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (current, debt) = &mut *state;
        if limit > *current {
            let mut more = limit - *current;
            let repaid = more.min(*debt);
            *debt -= repaid;
            more -= repaid;
            self.slots.add_permits(more);
        } else if limit < *current {
            let fewer = *current - limit;
            let now = self.slots.forget_permits(fewer);
            *debt += fewer - now;
        }
        *current = limit;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limiter.busy.fetch_sub(1, Ordering::Relaxed);
        let mut state = self.limiter.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.1 > 0
            && let Some(permit) = self.permit.take()
        {
            state.1 -= 1;
            permit.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One interval: `WINDOW_TICKS` ticks at `rate`.
    fn interval(pace: &mut Pace, rate: f64, busy: usize) -> usize {
        (0..WINDOW_TICKS)
            .map(|_| pace.measured(rate, busy))
            .last()
            .unwrap()
    }

    #[test]
    fn grows_while_the_rate_grows_and_stops_on_a_plateau() {
        let mut pace = Pace::new(4, 64);
        // The first interval after a change is not measured.
        assert_eq!(interval(&mut pace, 99.0, 4), 4);
        assert_eq!(interval(&mut pace, 10.0, 4), 8);
        assert_eq!(interval(&mut pace, 99.0, 8), 8);
        assert_eq!(interval(&mut pace, 20.0, 8), 16);
        assert_eq!(interval(&mut pace, 99.0, 16), 16);
        // Flat: no growth, and after two flat intervals none any more.
        assert_eq!(interval(&mut pace, 21.0, 16), 16);
        assert_eq!(interval(&mut pace, 21.5, 16), 16);
        assert_eq!(interval(&mut pace, 100.0, 16), 16);
    }

    #[test]
    fn a_limit_not_in_use_does_not_grow_and_the_ceiling_holds() {
        let mut pace = Pace::new(4, 5);
        interval(&mut pace, 0.0, 4);
        assert_eq!(interval(&mut pace, 10.0, 2), 4, "only 2 of 4 in use");
        assert_eq!(interval(&mut pace, 20.0, 4), 5);
        interval(&mut pace, 0.0, 5);
        assert_eq!(interval(&mut pace, 40.0, 5), 5);
    }

    #[test]
    fn a_throttle_sets_a_ceiling_at_what_the_server_took() {
        let mut pace = Pace::new(8, 64);
        interval(&mut pace, 0.0, 8);
        assert_eq!(interval(&mut pace, 10.0, 8), 16);
        assert_eq!(pace.throttled(9), 9);
        assert_eq!(pace.throttled(10), 9, "never back up");
        interval(&mut pace, 0.0, 9);
        assert_eq!(interval(&mut pace, 100.0, 9), 9, "never past the ceiling");
        assert_eq!(pace.throttled(0), 1, "at least one");
    }

    #[tokio::test]
    async fn the_limiter_grants_no_more_than_its_limit_even_while_it_shrinks() {
        let limiter = Limiter::new(3);
        let a = limiter.acquire().await;
        let b = limiter.acquire().await;
        let c = limiter.acquire().await;
        assert_eq!(limiter.busy(), 3);
        limiter.set_limit(1);
        drop(a);
        drop(b);
        // Two slots were taken out; the one left is in use.
        let waiting = tokio::time::timeout(Duration::from_millis(20), limiter.acquire()).await;
        assert!(waiting.is_err(), "no slot while the one left is in use");
        drop(c);
        let d = limiter.acquire().await;
        assert_eq!(limiter.busy(), 1);
        limiter.set_limit(3);
        let e = limiter.acquire().await;
        let f = limiter.acquire().await;
        assert_eq!(limiter.busy(), 3);
        drop((d, e, f));
        assert_eq!(limiter.busy(), 0);
    }
}
