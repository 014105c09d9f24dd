//! Seeded fault injection: server errors, rate limits, dropped connections, latency.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Which requests faults apply to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FaultScope {
    /// Every request.
    #[default]
    AllRequests,
    /// `POST /v1/uploads/{id}/parts` only.
    PartsOnly,
}

/// Faults an emulator injects; the default injects none, and the `with_*`
/// methods add them.
///
/// Counters start at 1 with the first request in scope, so
/// `with_server_error_every(3)` fails the 3rd, 6th, 9th… request. The random
/// rate draws from a generator seeded with `seed`: the same requests in the
/// same order meet the same faults.
///
/// ```
/// use std::time::Duration;
/// use openai_uploads::emulator::{FaultScope, Faults};
///
/// let faults = Faults::default()
///     .with_scope(FaultScope::PartsOnly)
///     .with_rate_limit_every(4)
///     .with_retry_after(Duration::from_secs(2));
/// assert_eq!(faults.rate_limit_every, Some(4));
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Faults {
    /// Requests the faults apply to.
    pub scope: FaultScope,
    /// Answer every Nth request in scope with 500.
    pub server_error_every: Option<u64>,
    /// Answer every Nth request in scope with 429 and `Retry-After`.
    pub rate_limit_every: Option<u64>,
    /// Wait announced in `Retry-After` (whole seconds) and `retry-after-ms`.
    pub retry_after: Duration,
    /// Drop the connection of every Nth request in scope after reading part of its body.
    pub drop_every: Option<u64>,
    /// Probability in `0.0..=1.0` that a request in scope meets a random fault
    /// (500, 429 or a dropped connection, equally likely).
    pub random_rate: f64,
    /// Seed of the random faults.
    pub seed: u64,
    /// Delay added before every answer.
    pub latency: Duration,
    /// Carry out this many completions, then drop each one's connection
    /// instead of answering: the client never learns that it succeeded.
    /// Not counted with the other faults.
    pub lost_completion_answers: u32,
}

impl Faults {
    /// Applies the faults to the requests in `scope` only.
    pub fn with_scope(mut self, scope: FaultScope) -> Self {
        self.scope = scope;
        self
    }

    /// Answers every `n`th request in scope with 500.
    pub fn with_server_error_every(mut self, n: u64) -> Self {
        self.server_error_every = Some(n);
        self
    }

    /// Answers every `n`th request in scope with 429 and `Retry-After`.
    pub fn with_rate_limit_every(mut self, n: u64) -> Self {
        self.rate_limit_every = Some(n);
        self
    }

    /// Announces `wait` on the 429 answers.
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = wait;
        self
    }

    /// Drops the connection of every `n`th request in scope, part of its body read.
    pub fn with_drop_every(mut self, n: u64) -> Self {
        self.drop_every = Some(n);
        self
    }

    /// Meets a request in scope with a random fault with probability `rate`.
    pub fn with_random_rate(mut self, rate: f64) -> Self {
        self.random_rate = rate;
        self
    }

    /// Seeds the random faults with `seed`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Delays every answer by `latency`.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Carries out `n` completions without answering them.
    pub fn with_lost_completion_answers(mut self, n: u32) -> Self {
        self.lost_completion_answers = n;
        self
    }
}

/// What to do with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    ServerError,
    RateLimit,
    DropConnection,
}

pub(crate) struct FaultState {
    faults: Faults,
    seen: u64,
    rng: StdRng,
}

impl FaultState {
    pub(crate) fn new(faults: Faults) -> Self {
        let rng = StdRng::seed_from_u64(faults.seed);
        Self {
            faults,
            seen: 0,
            rng,
        }
    }

    pub(crate) fn latency(&self) -> Duration {
        self.faults.latency
    }

    pub(crate) fn retry_after(&self) -> Duration {
        self.faults.retry_after
    }

    /// Whether the answer to a completion about to be carried out is lost.
    pub(crate) fn lose_completion_answer(&mut self) -> bool {
        let lose = self.faults.lost_completion_answers > 0;
        self.faults.lost_completion_answers = self.faults.lost_completion_answers.saturating_sub(1);
        lose
    }

    /// Decides the fate of a request, counting it if it is in scope.
    pub(crate) fn decide(&mut self, is_part: bool) -> Option<Fault> {
        if self.faults.scope == FaultScope::PartsOnly && !is_part {
            return None;
        }
        self.seen += 1;
        let n = self.seen;
        let every = |k: Option<u64>| k.is_some_and(|k| k > 0 && n.is_multiple_of(k));
        if every(self.faults.drop_every) {
            return Some(Fault::DropConnection);
        }
        if every(self.faults.server_error_every) {
            return Some(Fault::ServerError);
        }
        if every(self.faults.rate_limit_every) {
            return Some(Fault::RateLimit);
        }
        if self.faults.random_rate > 0.0 && self.rng.random_bool(self.faults.random_rate.min(1.0)) {
            return Some(match self.rng.random_range(0..3) {
                0 => Fault::ServerError,
                1 => Fault::RateLimit,
                _ => Fault::DropConnection,
            });
        }
        None
    }
}
