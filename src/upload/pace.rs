//! How many parts are in flight: a fixed number, or one that grows while
//! the measured throughput grows and backs off when the server throttles.
//!
//! [`Pace`] is the decision, a pure function of what was measured and
//! answered; [`Limiter`] holds the slots the parts take, one per attempt in
//! flight.
//!
//! The count adapts as TCP's congestion window does. It starts by doubling
//! while the throughput grows (the slow start). A 429 is congestion, not a
//! ceiling: it halves the count (never below 1) once per wave, and the count
//! then grows by one part per round of parts confirmed with no 429 (a round
//! is as many attempts as the count), back up to what the throughput showed
//! to be useful. A wave of refusals shows what the server took; stepping
//! back up past that count takes [`PROBE_ROUNDS`] rounds, and a refusal
//! there again drops the count only to what the server was serving, so a
//! server with a real limit on parts in flight sees a single 429 now and
//! then, not waves of them.

use std::cell::Cell;
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

/// Quiet rounds before the count steps back up to one the server refused.
const PROBE_ROUNDS: usize = 8;

/// The refusals that brought the count down last: how many attempts were
/// in flight under the count they refused, and how many were refused.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Wave {
    sent: usize,
    refused: usize,
}

/// The adaptive decision.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pace {
    limit: usize,
    ceiling: usize,
    /// The most parts in flight the throughput showed to pay: the ceiling
    /// until the slow start ends on a plateau.
    useful: usize,
    /// Best throughput seen, bytes per second.
    best: f64,
    flat: u32,
    settling: u32,
    /// Rates of the ticks of the interval being measured.
    sum: f64,
    ticks: u32,
    /// Bumped by each decrease: attempts begun before it were sent under a
    /// count already given up, and their refusals are no news.
    epoch: u64,
    wave: Wave,
    /// The count the server last refused; stepping up to it is a probe.
    refused_at: usize,
    /// Attempts finished under a full count since the last change.
    finished: usize,
}

impl Pace {
    /// Starts at `start` parts in flight, never above `ceiling`.
    pub(crate) fn new(start: usize, ceiling: usize) -> Self {
        Self {
            limit: start.min(ceiling).max(1),
            ceiling: ceiling.max(1),
            useful: ceiling.max(1),
            best: 0.0,
            flat: 0,
            settling: SETTLE_INTERVALS,
            sum: 0.0,
            ticks: 0,
            epoch: 0,
            wave: Wave::default(),
            refused_at: usize::MAX,
            finished: 0,
        }
    }

    /// The parts in flight allowed now.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// The epoch an attempt begun now belongs to.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    fn slow_start(&self) -> bool {
        self.flat < FLAT_INTERVALS
    }

    /// After a tick that sent `rate` bytes per second with `busy` parts in
    /// flight. Every [`WINDOW_TICKS`] ticks make an interval: during the slow
    /// start the count doubles while the interval's rate grows by more than
    /// [`GAIN`], and the slow start ends after [`FLAT_INTERVALS`] without,
    /// the count reached being what is useful. An interval in which the
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
        if !self.slow_start() {
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
            if !self.slow_start() {
                self.useful = self.limit;
            }
        }
        self.limit
    }

    /// An attempt begun in `epoch` was throttled (429) while `busy` others
    /// were in flight. If it was sent under the current count, the count
    /// halves (never below 1). If it was one of the wave the last decrease
    /// answered, the count drops only to what that wave shows the server
    /// took: the attempts sent less those refused, or the others it was
    /// serving when it refused this one, whichever is fewer. A refusal at or
    /// below the count a wave showed the server refuses drops the count to
    /// what the server was serving, and no further.
    pub(crate) fn throttled(&mut self, epoch: u64, busy: usize) -> usize {
        self.flat = FLAT_INTERVALS;
        self.finished = 0;
        let known = self.refused_at != usize::MAX;
        if known && busy < self.refused_at {
            // Refused at or below the count a wave showed the server refuses
            // (a probe, or a part ended that the server has not let go of
            // yet): the server's limit, met again, not congestion. What it
            // was serving is what it takes; no halving.
            self.limit = self.limit.min(busy.max(1));
            self.refused_at = self.refused_at.min(busy + 1);
        } else if epoch >= self.epoch {
            self.wave = Wave {
                sent: self.limit,
                refused: 1,
            };
            // Refused again at the count a wave was refused at: a real limit,
            // to be probed slowly. A refusal elsewhere sets no such count.
            self.refused_at = if self.limit >= self.refused_at {
                self.limit
            } else {
                usize::MAX
            };
            self.limit = (self.limit / 2).max(1);
            self.epoch += 1;
        } else if epoch + 1 == self.epoch {
            self.wave.refused += 1;
            let took = self
                .wave
                .sent
                .saturating_sub(self.wave.refused)
                .min(busy)
                .max(1);
            self.limit = self.limit.min(took);
            self.refused_at = self.refused_at.min(took + 1);
        }
        self.limit
    }

    /// An attempt finished, whatever its answer, while `busy` others were
    /// still in flight. After the slow start, a round of attempts finished
    /// under a full count with no 429 adds one part, up to what is useful;
    /// the step up to the count last refused takes [`PROBE_ROUNDS`] rounds.
    pub(crate) fn finished(&mut self, busy: usize) -> usize {
        if self.slow_start() || busy + 1 < self.limit {
            return self.limit;
        }
        self.finished += 1;
        if self.limit >= self.refused_at {
            // A round at the count once refused, with no 429: it was passing.
            if self.finished >= self.limit {
                self.refused_at = usize::MAX;
                self.finished = 0;
            }
            return self.limit;
        }
        let rounds = if self.limit + 1 == self.refused_at {
            PROBE_ROUNDS
        } else {
            1
        };
        if self.limit < self.useful && self.finished >= self.limit * rounds {
            self.limit += 1;
            self.finished = 0;
        }
        self.limit
    }
}

thread_local! {
    /// The epoch of the slot last given back on this thread. A sender gives
    /// its slot back and reports a 429 in the same poll, with no await
    /// between, so [`Pacer::throttled`] reads the throttled attempt's epoch.
    static LAST_EPOCH: Cell<u64> = const { Cell::new(0) };
}

/// The slots of one upload and, when it adapts, the decision that sizes them.
pub(crate) struct Pacer {
    limiter: Arc<Limiter>,
    adaptive: Option<Arc<Mutex<Pace>>>,
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
            adaptive: Some(Arc::new(Mutex::new(pace))),
        }
    }

    /// Whether the count adapts.
    pub(crate) fn is_adaptive(&self) -> bool {
        self.adaptive.is_some()
    }

    /// Waits for a slot for one attempt.
    pub(crate) async fn slot(&self) -> Slot {
        let mut slot = self.limiter.acquire().await;
        if let Some(pace) = &self.adaptive {
            slot.epoch = lock(pace).epoch();
            slot.pace = Some((pace.clone(), self.limiter.clone()));
        }
        slot
    }

    /// An interval sent `rate` bytes per second.
    pub(crate) fn measured(&self, rate: f64) {
        if let Some(pace) = &self.adaptive {
            decide(pace, &self.limiter, |pace, busy| pace.measured(rate, busy));
        }
    }

    /// An attempt was throttled; its slot is already given back.
    pub(crate) fn throttled(&self) {
        if let Some(pace) = &self.adaptive {
            let epoch = LAST_EPOCH.with(Cell::get);
            decide(pace, &self.limiter, |pace, busy| {
                let before = pace.limit();
                let limit = pace.throttled(epoch, busy);
                if limit < before {
                    tracing::info!(parts_in_flight = limit, "throttled: fewer parts in flight");
                }
                limit
            });
        }
    }
}

fn lock(pace: &Mutex<Pace>) -> std::sync::MutexGuard<'_, Pace> {
    pace.lock().unwrap_or_else(|p| p.into_inner())
}

/// Applies a decision of `pace` to the slots of `limiter`.
fn decide(pace: &Mutex<Pace>, limiter: &Limiter, decision: impl FnOnce(&mut Pace, usize) -> usize) {
    let mut pace = lock(pace);
    let before = pace.limit();
    let limit = decision(&mut pace, limiter.busy());
    if limit != before {
        tracing::debug!(parts_in_flight = limit, "pace");
        limiter.set_limit(limit);
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
    /// The pace's epoch when the attempt began.
    epoch: u64,
    /// The pace told when the attempt ends, and the slots it sizes.
    pace: Option<(Arc<Mutex<Pace>>, Arc<Limiter>)>,
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
            epoch: 0,
            pace: None,
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
        {
            let mut state = self.limiter.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.1 > 0
                && let Some(permit) = self.permit.take()
            {
                state.1 -= 1;
                permit.forget();
            }
        }
        LAST_EPOCH.with(|last| last.set(self.epoch));
        if let Some((pace, limiter)) = self.pace.take() {
            decide(&pace, &limiter, |pace, busy| pace.finished(busy));
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

    /// A pace past its slow start, at `limit` parts in flight.
    fn steady(limit: usize) -> Pace {
        let mut pace = Pace::new(limit, 64);
        pace.flat = FLAT_INTERVALS;
        pace
    }

    /// `n` attempts finished under a full count.
    fn finish(pace: &mut Pace, n: usize) -> usize {
        (0..n)
            .map(|_| pace.finished(pace.limit() - 1))
            .last()
            .unwrap()
    }

    #[test]
    fn one_429_halves_and_never_below_one() {
        let mut pace = steady(16);
        let epoch = pace.epoch();
        assert_eq!(pace.throttled(epoch, 15), 8);
        let mut pace = steady(1);
        assert_eq!(pace.throttled(pace.epoch(), 15), 1);
    }

    #[test]
    fn a_429_ends_the_slow_start() {
        let mut pace = Pace::new(8, 64);
        interval(&mut pace, 0.0, 8);
        assert_eq!(interval(&mut pace, 10.0, 8), 16);
        assert_eq!(pace.throttled(pace.epoch(), 15), 8);
        interval(&mut pace, 0.0, 8);
        assert_eq!(interval(&mut pace, 100.0, 8), 8, "no doubling after a 429");
    }

    #[test]
    fn a_wave_of_refusals_drops_to_what_the_server_took_halving_once() {
        // 16 sent at once to a server that takes 3: 13 refusals, all of
        // attempts begun before the first decrease.
        let mut pace = steady(16);
        let epoch = pace.epoch();
        assert_eq!(pace.throttled(epoch, 15), 8);
        for _ in 1..12 {
            pace.throttled(epoch, 15);
        }
        assert_eq!(pace.throttled(epoch, 15), 3);
        // A refusal of an attempt sent under the new count is news.
        assert_eq!(pace.throttled(pace.epoch(), 15), 1);
    }

    #[test]
    fn a_late_refusal_of_the_wave_drops_to_the_others_the_server_served() {
        let mut pace = steady(16);
        let epoch = pace.epoch();
        assert_eq!(pace.throttled(epoch, 15), 8);
        // Parts of the wave that were accepted have ended meanwhile: the
        // server refused this one while serving 3.
        assert_eq!(pace.throttled(epoch, 3), 3);
        assert_eq!(pace.throttled(epoch, 0), 1, "never below one");
    }

    #[test]
    fn a_refusal_below_the_count_a_wave_showed_does_not_halve() {
        let mut pace = steady(16);
        let epoch = pace.epoch();
        for _ in 0..8 {
            pace.throttled(epoch, 15);
        }
        assert_eq!(pace.limit(), 8, "16 sent, 8 refused");
        // A part is refused while 7 others are in flight: the server had
        // not yet let go of one that ended.
        assert_eq!(pace.throttled(pace.epoch(), 7), 7);
        // Past the count the wave showed, a refusal halves.
        let mut pace = steady(16);
        for _ in 0..8 {
            pace.throttled(epoch, 15);
        }
        pace.limit = 12;
        assert_eq!(pace.throttled(pace.epoch(), 11), 6);
    }

    #[test]
    fn quiet_rounds_restore_the_count() {
        let mut pace = steady(16);
        assert_eq!(pace.throttled(pace.epoch(), 15), 8);
        // One part more per round: as many attempts as the count.
        assert_eq!(finish(&mut pace, 7), 8);
        assert_eq!(finish(&mut pace, 1), 9);
        assert_eq!(finish(&mut pace, 9), 10);
        for limit in 10..16 {
            finish(&mut pace, limit);
        }
        assert_eq!(pace.limit(), 16, "back where the 429 came");
        assert_eq!(finish(&mut pace, 16), 17);
    }

    #[test]
    fn the_count_a_wave_showed_is_probed_slowly_and_kept_when_refused_again() {
        let mut pace = steady(16);
        let epoch = pace.epoch();
        for _ in 0..13 {
            pace.throttled(epoch, 15);
        }
        assert_eq!(pace.limit(), 3, "16 sent, 13 refused");
        assert_eq!(finish(&mut pace, 3 * PROBE_ROUNDS - 1), 3);
        assert_eq!(finish(&mut pace, 1), 4);
        // Refused at 4 again, serving 3: back to 3, and 4 stays the count
        // to probe.
        assert_eq!(pace.throttled(pace.epoch(), 3), 3);
        assert_eq!(finish(&mut pace, 3 * PROBE_ROUNDS - 1), 3);
        assert_eq!(finish(&mut pace, 1), 4);
        // A round at 4 with no 429: the limit was passing, growth goes on.
        assert_eq!(finish(&mut pace, 4), 4);
        assert_eq!(finish(&mut pace, 4), 5);
    }

    #[test]
    fn a_count_not_in_use_or_not_useful_does_not_grow() {
        let mut pace = steady(8);
        assert_eq!(pace.throttled(pace.epoch(), 15), 4);
        for _ in 0..100 {
            pace.finished(1);
        }
        assert_eq!(pace.limit(), 4, "only 2 of 4 in use");
        // A slow start that ended on a plateau at 6 set what is useful.
        let mut pace = Pace::new(6, 64);
        interval(&mut pace, 0.0, 6);
        interval(&mut pace, 10.0, 6);
        interval(&mut pace, 0.0, 12);
        interval(&mut pace, 10.5, 12);
        interval(&mut pace, 10.6, 12);
        assert_eq!(pace.useful, 12);
        pace.throttled(pace.epoch(), 15);
        for _ in 0..1000 {
            pace.finished(pace.limit());
        }
        assert_eq!(pace.limit(), 12);
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
