//! Work that must never take the CPU from answering requests: parsing an uploaded or stored
//! dataset, building its category indexes. Each job gets a thread of its own that runs at
//! idle scheduling priority (Linux `SCHED_IDLE`): the kernel gives it only the time no
//! request-serving thread wants, so a million-row upload on a busy core slows itself down,
//! not the queries around it. Elsewhere the thread runs at normal priority.
//!
//! Queries that run on the blocking pool (large dataset answers) are request serving and
//! keep normal priority: only the change path's bulk work comes here.

use tokio::sync::oneshot;

/// Why a background job gave no result.
#[derive(Debug, thiserror::Error)]
pub enum BackgroundError {
    #[error("could not start a background thread: {0}")]
    Spawn(std::io::Error),
    #[error("the background job stopped without a result")]
    Lost,
}

/// A running job; await [`Job::join`] for its result.
pub struct Job<T> {
    done: oneshot::Receiver<T>,
}

impl<T> Job<T> {
    /// Its result, once it has finished. A job that panicked gives [`BackgroundError::Lost`].
    pub async fn join(self) -> Result<T, BackgroundError> {
        self.done.await.map_err(|_| BackgroundError::Lost)
    }
}

/// Runs `work` on a new thread named `name`, at idle priority.
pub fn spawn<T, F>(name: &str, work: F) -> Result<Job<T>, BackgroundError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, done) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            lower_priority();
            // The receiver may be gone (the request was dropped): nothing to tell then.
            let _ = tx.send(work());
        })
        .map_err(BackgroundError::Spawn)?;
    Ok(Job { done })
}

/// Moves the calling thread to the idle scheduling class; a failure only costs fairness.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `sched_setscheduler` with pid 0 changes only the calling thread's policy;
        // `param` is a valid, initialised `sched_param` that outlives the call.
        let failed = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0;
        if failed {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "background thread keeps normal priority"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_gives_its_result() {
        let job = spawn("sy-test", || 6 * 7).unwrap();
        assert_eq!(job.join().await.unwrap(), 42);
    }

    #[tokio::test]
    async fn a_job_that_panics_is_lost_not_hung() {
        let job = spawn("sy-test", || -> u8 { panic!("boom") }).unwrap();
        assert!(matches!(job.join().await, Err(BackgroundError::Lost)));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_thread_runs_at_idle_priority() {
        // SAFETY: `sched_getscheduler(0)` only reads the calling thread's policy.
        let policy = spawn("sy-test", || unsafe { libc::sched_getscheduler(0) })
            .unwrap()
            .join()
            .await
            .unwrap();
        assert_eq!(policy, libc::SCHED_IDLE);
    }
}
