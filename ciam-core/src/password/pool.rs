//! The bounded pool of hashing threads that keeps argon2 off the async executor.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Block;

use super::PasswordError;
use super::config::PoolConfig;

/// Work run on a pool thread, given that thread's reusable argon2 memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send + 'static>;

/// The guess for the job time until the first job has been measured.
const INITIAL_JOB_NANOS: u64 = 50_000_000;

/// Counters shared by the pool handle and its workers.
#[derive(Debug)]
struct Stats {
    /// Jobs accepted but not yet started.
    queued: AtomicUsize,
    /// Queue places reserved by callers ([`Slot`]) that have not sent their job yet.
    held: AtomicUsize,
    /// Exponential moving average of the job time, in nanoseconds.
    avg_job_nanos: AtomicU64,
    /// Jobs finished since the pool started.
    completed: AtomicU64,
}

/// A fixed set of worker threads fed through a bounded queue.
///
/// Dropping the pool closes the queue; each worker finishes its current job and exits.
pub(crate) struct Pool {
    tx: SyncSender<Job>,
    stats: Arc<Stats>,
    workers: usize,
    /// Queue capacity.
    capacity: usize,
    /// Queue slots only priority jobs may take (a quarter of the queue).
    reserved: usize,
}

impl Pool {
    /// Starts `config.workers` threads; each allocates `blocks` argon2 blocks on its first job
    /// and keeps them for its lifetime, and runs at `niceness` (0: the process's own).
    pub(crate) fn start(
        config: PoolConfig,
        blocks: usize,
        niceness: u8,
    ) -> Result<Self, PasswordError> {
        let (tx, rx) = sync_channel::<Job>(config.queue);
        let rx = Arc::new(Mutex::new(rx));
        let stats = Arc::new(Stats {
            queued: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            avg_job_nanos: AtomicU64::new(INITIAL_JOB_NANOS),
            completed: AtomicU64::new(0),
        });
        for i in 0..config.workers {
            let (rx, stats) = (Arc::clone(&rx), Arc::clone(&stats));
            std::thread::Builder::new()
                .name(format!("ciam-password-{i}"))
                .spawn(move || {
                    lower_priority(niceness);
                    work(&rx, &stats, blocks)
                })
                .map_err(|e| {
                    PasswordError::Internal(format!("cannot start hashing thread: {e}"))
                })?;
        }
        Ok(Self {
            tx,
            stats,
            workers: config.workers,
            capacity: config.queue,
            reserved: config.queue / 4,
        })
    }

    /// Queue places in use: jobs waiting for a worker and places reserved by [`Slot`]s.
    fn load(&self) -> usize {
        self.stats
            .queued
            .load(Ordering::SeqCst)
            .saturating_add(self.stats.held.load(Ordering::SeqCst))
    }

    /// The queue places a lane may fill: all of them for priority jobs, all but the
    /// reserved quarter for ordinary ones.
    fn limit(&self, priority: bool) -> usize {
        if priority {
            self.capacity
        } else {
            self.capacity.saturating_sub(self.reserved)
        }
    }

    fn overloaded(&self) -> PasswordError {
        PasswordError::Overloaded {
            retry_after: self.retry_after(),
        }
    }

    /// Reserves a queue place in the given lane for a job the caller will send later
    /// ([`Self::run_slot`]), or fails fast with [`PasswordError::Overloaded`]. Held places
    /// count as queued, so a request admitted here is not refused later for want of room,
    /// after it has done its other work. Dropping the slot gives the place back.
    pub(crate) fn reserve(&self, priority: bool) -> Result<Slot, PasswordError> {
        let limit = self.limit(priority);
        let held = &self.stats.held;
        let mut current = held.load(Ordering::SeqCst);
        loop {
            if self
                .stats
                .queued
                .load(Ordering::SeqCst)
                .saturating_add(current)
                >= limit
            {
                return Err(self.overloaded());
            }
            match held.compare_exchange_weak(
                current,
                current + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    return Ok(Slot {
                        stats: Arc::clone(&self.stats),
                        priority,
                        armed: true,
                    });
                }
                Err(now) => current = now,
            }
        }
    }

    /// Runs `f` on a worker and waits for its result without blocking the executor.
    ///
    /// Fails fast with [`PasswordError::Overloaded`] when the queue is full; a job that is not
    /// `priority` already when only the reserved quarter of the queue is left, so a flood of
    /// ordinary jobs cannot take the last places from priority ones.
    pub(crate) async fn run_lane<T, F>(&self, priority: bool, f: F) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    {
        if self.load() >= self.limit(priority) {
            return Err(self.overloaded());
        }
        self.stats.queued.fetch_add(1, Ordering::SeqCst);
        self.send(f).await
    }

    /// Runs `f` in the place `slot` reserved. `priority` is the lane the job turned out to
    /// belong to: a slot reserved in the priority lane for a job that is ordinary after all
    /// (say, a device token that did not verify) keeps its place only if the ordinary lane
    /// has room for it.
    pub(crate) async fn run_slot<T, F>(
        &self,
        mut slot: Slot,
        priority: bool,
        f: F,
    ) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    {
        if slot.priority && !priority && self.load() > self.limit(false) {
            drop(slot);
            return Err(self.overloaded());
        }
        // Queued first, then the hold released: the load never dips in between, so no other
        // caller can take this place meanwhile.
        self.stats.queued.fetch_add(1, Ordering::SeqCst);
        slot.release();
        self.send(f).await
    }

    /// Sends a job already counted in `queued` and waits for its result.
    async fn send<T, F>(&self, f: F) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        let stats = Arc::clone(&self.stats);
        let job: Job = Box::new(move |memory| {
            let out = f(memory);
            // Counted before the caller can see the result, so the count is exact for it.
            stats.completed.fetch_add(1, Ordering::SeqCst);
            // The caller may have gone away (request cancelled); the result is then dropped.
            let _ = done.send(out);
        });
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.stats.queued.fetch_sub(1, Ordering::SeqCst);
                return Err(self.overloaded());
            }
            Err(TrySendError::Disconnected(_)) => {
                self.stats.queued.fetch_sub(1, Ordering::SeqCst);
                return Err(PasswordError::Internal(
                    "hashing threads have stopped".into(),
                ));
            }
        }
        result
            .await
            .map_err(|_| PasswordError::Internal("a hashing job failed".into()))
    }

    /// When a job in the given lane would be refused right now, the `retry_after` it would
    /// get; `None` when there is room.
    pub(crate) fn saturated(&self, priority: bool) -> Option<Duration> {
        (self.load() >= self.limit(priority)).then(|| self.retry_after())
    }

    /// [`Self::run_lane`] for an ordinary job.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    {
        self.run_lane(false, f).await
    }

    /// Jobs finished since the pool started.
    pub(crate) fn completed(&self) -> u64 {
        self.stats.completed.load(Ordering::SeqCst)
    }

    /// Jobs accepted and waiting for a worker.
    pub(crate) fn queued(&self) -> usize {
        self.stats.queued.load(Ordering::SeqCst)
    }

    /// Estimates when a queue slot frees up: the jobs ahead, spread over the workers, times
    /// the average job time. Never zero.
    fn retry_after(&self) -> Duration {
        let avg = self
            .stats
            .avg_job_nanos
            .load(Ordering::Relaxed)
            .max(1_000_000);
        let queued = self.load() as u64;
        let rounds = queued / self.workers.max(1) as u64 + 1;
        Duration::from_nanos(avg.saturating_mul(rounds))
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.workers)
            .field("queued", &self.stats.queued.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A queue place reserved with [`Pool::reserve`]; given back when dropped unused.
pub(crate) struct Slot {
    stats: Arc<Stats>,
    /// The lane it was reserved in.
    priority: bool,
    /// Still counted in `held`.
    armed: bool,
}

impl Slot {
    fn release(&mut self) {
        if std::mem::replace(&mut self.armed, false) {
            self.stats.held.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.release();
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("priority", &self.priority)
            .field("armed", &self.armed)
            .finish()
    }
}

/// Lowers the calling thread's scheduling priority to `niceness` (1 to 19; 0 leaves it), so
/// that hashing yields the CPU to request handling: a waking request thread preempts a
/// hashing thread instead of waiting for its time slice. Needs no privilege (only raising
/// priority does); a failure is logged and the thread runs at the normal priority.
fn lower_priority(niceness: u8) {
    if niceness == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};
        // thread-priority maps its 0..=99 scale onto nice 19..=-20 for normal threads:
        // nice = trunc(39 * (1 - p / 99)) - 20. Take the p that gives the asked niceness.
        let nice = i32::from(niceness.min(19));
        let p = (0u8..=99)
            .find(|&p| (39.0 * (1.0 - f32::from(p) / 99.0)) as i32 - 20 == nice)
            .unwrap_or(0);
        let result = ThreadPriorityValue::try_from(p)
            .map_err(|e| e.to_string())
            .and_then(|v| {
                set_current_thread_priority(ThreadPriority::Crossplatform(v))
                    .map_err(|e| format!("{e:?}"))
            });
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot lower the hashing thread's priority");
        }
    }
}

/// A worker's loop: take a job, run it with this thread's memory, update the average.
fn work(rx: &Mutex<Receiver<Job>>, stats: &Stats, blocks: usize) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        // The lock is held only while waiting; jobs run outside it, so it cannot be poisoned
        // by a job.
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        // Err: every sender is gone, i.e. the last PasswordHasher was dropped.
        let Ok(job) = job else { return };
        stats.queued.fetch_sub(1, Ordering::SeqCst);
        if memory.len() < blocks {
            memory = vec![Block::new(); blocks];
        }
        let start = Instant::now();
        // A panicking job drops its result sender (the caller gets Internal); the worker lives on.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
        let took = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let old = stats.avg_job_nanos.load(Ordering::Relaxed);
        stats
            .avg_job_nanos
            .store((old - old / 8).saturating_add(took / 8), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn workers_exit_when_the_pool_is_dropped() {
        let pool = Pool::start(
            PoolConfig {
                workers: 2,
                queue: 2,
            },
            8,
            10,
        )
        .unwrap();
        assert_eq!(pool.run(|m| m.len()).await.unwrap(), 8);
        let stats = Arc::downgrade(&pool.stats);
        drop(pool);
        for _ in 0..200 {
            if stats.strong_count() == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("hashing threads still running after the pool was dropped");
    }
}
