//! Bounded password hashing: the one place argon2id runs.
//!
//! An argon2id hash or check takes 19 MiB and tens of milliseconds of one core, and anyone
//! can ask for one by logging in. Run unbounded on the blocking pool, a flood of logins ran
//! one per request at once (150 logins: 2.9 GB resident). Here hashes run on a fixed set of
//! `concurrency` threads of their own, at most `queue` callers wait for one (counted by a
//! semaphore), and any caller past that is told to come back later
//! ([`AccountError::Busy`]) without any work done.
//!
//! Memory is the subtle part. argon2 allocates its 19 MiB with `Vec` for each hash, and
//! glibc, once one such block has been freed, serves the next from the heap, where blocks
//! from two threads interleave with small allocations and cannot be reused: two hashes at
//! a time took a flood of 300 logins to 350 MB. So each hashing thread maps one block set
//! of its own from the OS ([`Blocks`]), reuses it for every hash
//! (`hash_password_into_with_memory`), and unmaps it as soon as it finds no job waiting;
//! when the last running hash ends, what the flood's requests freed is handed back too
//! (`malloc_trim`). Peak memory is then `concurrency × 19 MiB`, and an idle node keeps none
//! of it. The threads are our own, not the blocking pool's, because the pool adds threads
//! (and with them block sets) whenever none is idle.
//!
//! This module knows nothing of users or tokens.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{Semaphore, oneshot};

use super::AccountError;

/// What a caller turned away by a full queue is told to wait before trying again. A hash
/// takes well under a second; a second later the queue has moved on.
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

type Job = Box<dyn FnOnce() + Send>;

/// Runs argon2id on a fixed set of threads with a bounded queue.
#[derive(Clone)]
pub struct Hasher {
    inner: Arc<Inner>,
}

struct Inner {
    /// One permit per caller that may be running or waiting: `concurrency + queue`.
    admitted: Arc<Semaphore>,
    /// What the hashing threads share.
    shared: Arc<Shared>,
}

/// The job queue of the hashing threads.
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when a job is queued or the hasher is gone.
    ready: Condvar,
    /// Hashes running now, to hand memory back when the last one ends.
    running: AtomicUsize,
}

struct Queue {
    jobs: VecDeque<Job>,
    /// Set when the last `Hasher` is dropped: the threads end.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Jobs run outside the lock and catch their panics, so a poisoned queue is still
        // a consistent one.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

impl Hasher {
    /// A hasher running `concurrency` hashes at once (0: one per core) with `queue` callers
    /// waiting at most.
    pub fn new(concurrency: usize, queue: usize) -> Hasher {
        let concurrency = match concurrency {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            running: AtomicUsize::new(0),
        });
        let mut started = 0;
        for _ in 0..concurrency {
            let shared = shared.clone();
            match std::thread::Builder::new()
                .name("switchyard-hash".into())
                .spawn(move || work_loop(&shared))
            {
                Ok(_) => started += 1,
                Err(error) => tracing::error!(%error, "could not start a password hashing thread"),
            }
        }
        if started == 0 {
            // Nobody would ever take a job: refuse them instead of letting callers wait.
            shared.lock().closed = true;
        }
        Hasher {
            inner: Arc::new(Inner {
                admitted: Arc::new(Semaphore::new(concurrency.saturating_add(queue))),
                shared,
            }),
        }
    }

    /// Password hashes waiting for a hashing thread now.
    pub fn queued(&self) -> usize {
        self.inner.shared.lock().jobs.len()
    }

    /// Hashes a password into its PHC string (`$argon2id$…`).
    pub async fn hash(&self, password: String) -> Result<String, AccountError> {
        self.run(move || hash_blocking(&password)).await?
    }

    /// Checks a password against a stored hash; `None` checks it against a decoy, so that an
    /// unknown user costs the same work as a wrong password (and always fails).
    pub async fn verify(
        &self,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, AccountError> {
        self.run(move || match hash {
            Some(hash) => verify_blocking(&password, &hash),
            None => {
                let decoy = decoy_hash();
                // The result is ignored: nobody's password is the decoy's.
                let _ = verify_blocking(&password, decoy);
                false
            }
        })
        .await
    }

    /// Runs `work` on a hashing thread, or refuses at once when the queue is full.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AccountError> {
        let admitted = self
            .inner
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| AccountError::Busy(BUSY_RETRY_AFTER))?;
        let (reply, answer) = oneshot::channel();
        let gone = || AccountError::Hash("the password hashing threads are gone".into());
        let shared = self.inner.shared.clone();
        // The permit moves into the job: a caller that goes away does not free its place
        // before the work (and its memory) is done.
        let job: Job = Box::new(move || {
            let out = std::panic::catch_unwind(AssertUnwindSafe(work));
            drop(admitted);
            if let Ok(out) = out {
                let _ = reply.send(out);
            }
        });
        {
            let mut queue = shared.lock();
            if queue.closed {
                return Err(gone());
            }
            queue.jobs.push_back(job);
        }
        shared.ready.notify_one();
        answer.await.map_err(|_| gone())
    }
}

/// A hashing thread: runs jobs until the hasher is dropped, and lets its argon2 memory go
/// whenever it finds no job waiting.
fn work_loop(shared: &Shared) {
    loop {
        let mut queue = shared.lock();
        let job = loop {
            if let Some(job) = queue.jobs.pop_front() {
                break job;
            }
            if queue.closed {
                return;
            }
            if BLOCKS.with_borrow(Option::is_some) {
                drop(queue);
                BLOCKS.with_borrow_mut(|blocks| *blocks = None);
                if shared.running.load(Ordering::Acquire) == 0 {
                    crate::server::release_freed_memory();
                }
                queue = shared.lock();
                continue;
            }
            queue = shared
                .ready
                .wait(queue)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        };
        shared.running.fetch_add(1, Ordering::AcqRel);
        drop(queue);
        job();
        shared.running.fetch_sub(1, Ordering::AcqRel);
    }
}

thread_local! {
    /// This hashing thread's argon2 memory, reused from one hash to the next.
    static BLOCKS: RefCell<Option<Blocks>> = const { RefCell::new(None) };
}

/// Runs argon2 with `params` into `out`, on this thread's reused memory.
fn argon2_into(
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let count = params.block_count();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    BLOCKS.with_borrow_mut(|blocks| {
        if blocks.as_ref().is_none_or(|b| b.len() < count) {
            // The old set goes first, so that two are never held at once.
            *blocks = None;
            *blocks = Some(Blocks::new(count).ok_or(argon2::Error::MemoryTooMuch)?);
        }
        let memory = blocks.as_mut().ok_or(argon2::Error::MemoryTooMuch)?;
        argon2.hash_password_into_with_memory(password, salt, out, &mut memory.as_mut()[..count])
    })
}

/// argon2's working memory, mapped straight from the OS.
///
/// Not a `Vec`: glibc may place an allocation of this size at the top of a thread's arena,
/// which neither `free` (below its 38 MiB trim threshold) nor `malloc_trim` (which trims
/// only the main arena's top) gives back, so an idle node kept a hash's 19 MiB in about
/// half of the flood test runs. A mapping of our own leaves the process when dropped.
#[cfg(unix)]
struct Blocks {
    start: std::ptr::NonNull<Block>,
    len: usize,
}

#[cfg(unix)]
impl Blocks {
    /// Maps `len` zeroed blocks, or `None` if the OS refuses.
    fn new(len: usize) -> Option<Blocks> {
        let bytes = len.checked_mul(size_of::<Block>()).filter(|&b| b > 0)?;
        // SAFETY: an anonymous private mapping reads no memory of ours; the kernel chooses
        // the address, and a failure is reported as MAP_FAILED, checked below.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return None;
        }
        std::ptr::NonNull::new(start.cast::<Block>()).map(|start| Blocks { start, len })
    }

    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(unix)]
impl AsMut<[Block]> for Blocks {
    fn as_mut(&mut self) -> &mut [Block] {
        // SAFETY: the mapping is `len` blocks long and lives as long as `self`; it is
        // page-aligned (a Block needs 64 bytes); the kernel zero-fills it and all zeros is
        // a valid Block (128 `u64`s); `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr(), self.len) }
    }
}

#[cfg(unix)]
impl Drop for Blocks {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, which no reference outlives
        // (slices borrow `self`).
        unsafe {
            libc::munmap(self.start.as_ptr().cast(), self.len * size_of::<Block>());
        }
    }
}

/// Elsewhere, a plain allocation.
#[cfg(not(unix))]
struct Blocks(Vec<Block>);

#[cfg(not(unix))]
impl Blocks {
    fn new(len: usize) -> Option<Blocks> {
        Some(Blocks(vec![Block::default(); len]))
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(not(unix))]
impl AsMut<[Block]> for Blocks {
    fn as_mut(&mut self) -> &mut [Block] {
        &mut self.0
    }
}

fn hash_blocking(password: &str) -> Result<String, AccountError> {
    let failed = |e: &dyn std::fmt::Display| AccountError::Hash(e.to_string());
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| failed(&e))?;
    let params = Params::default();
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        argon2_into(params.clone(), password.as_bytes(), salt_bytes, out)
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(|e| failed(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches a stored argon2id PHC string. Anything unreadable is a
/// mismatch.
fn verify_blocking(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    // Only what `hash_blocking` writes is accepted: argon2id, version 19.
    if parsed.algorithm != Algorithm::Argon2id.ident()
        || parsed
            .version
            .is_some_and(|v| v != u32::from(Version::V0x13))
    {
        return false;
    }
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    Output::init_with(expected.len(), |out| {
        argon2_into(params, password.as_bytes(), salt_bytes, out)
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    // `Output` compares in constant time.
    .is_ok_and(|computed| computed == expected)
}

/// A hash of a password nobody knows. It is computed the first time an unknown user logs
/// in, on a hashing thread inside that login's slot, never on an async worker.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_blocking("decoy password for unknown users").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let hash = hash_blocking("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_blocking("correct horse", &hash));
        assert!(!verify_blocking("wrong horse", &hash));
        assert!(!verify_blocking("correct horse", "not a hash"));
    }

    #[test]
    fn hashes_agree_with_the_argon2_crate_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(verify_blocking("correct horse", &theirs));
        assert!(!verify_blocking("correct horsf", &theirs));
        let ours = hash_blocking("correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert_eq!(ours.len(), theirs.len());
    }

    #[tokio::test]
    async fn a_caller_past_the_queue_is_turned_away_without_waiting() {
        let hasher = Hasher::new(1, 1);
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let running = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.run(move || hold.recv().is_ok()).await }
        });
        let queued = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.run(|| 7).await }
        });
        while hasher.inner.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = hasher.run(|| 8).await;
        assert!(matches!(refused, Err(AccountError::Busy(_))));
        release.send(()).unwrap();
        assert!(running.await.unwrap().unwrap());
        assert_eq!(queued.await.unwrap().unwrap(), 7);
        assert_eq!(hasher.run(|| 9).await.unwrap(), 9);
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone() {
        let hasher = Hasher::new(1, 1);
        let failed = hasher.run(|| -> u32 { panic!("boom") }).await;
        assert!(matches!(failed, Err(AccountError::Hash(_))));
        assert_eq!(hasher.run(|| 3).await.unwrap(), 3);
    }
}
