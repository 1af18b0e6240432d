//! The worker pool: every job runs once, close rejects, join waits, panics
//! do not shrink the pool. No test sleeps: they wait on channels with a
//! deadline, so a broken pool fails a test instead of hanging it.

use le_stats_sportif::pool::{JoinFromWorker, PoolClosed, ThreadPool};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

/// Long enough for a loaded 2-core machine, short enough to fail fast.
const DEADLINE: Duration = Duration::from_secs(20);

// Compile-time check: the pool can be shared between threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ThreadPool>();
};

/// Runs `f` on its own thread and waits at most `DEADLINE` for it to end;
/// `false` if it did not (the thread is then left behind, the test fails).
fn finishes_in_time(f: impl FnOnce() + Send + 'static) -> bool {
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    finished.recv_timeout(DEADLINE).is_ok()
}

#[test]
fn every_job_runs_exactly_once() {
    const JOBS: usize = 1000;
    let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..JOBS).map(|_| AtomicUsize::new(0)).collect());
    let pool = ThreadPool::build(4).unwrap();
    for i in 0..JOBS {
        let runs = Arc::clone(&runs);
        pool.execute(Box::new(move || {
            runs[i].fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
    }
    pool.close_and_wait().unwrap();
    for (i, count) in runs.iter().enumerate() {
        assert_eq!(count.load(Ordering::SeqCst), 1, "job {i}");
    }
}

#[test]
fn many_submitters_at_once() {
    let ran = AtomicUsize::new(0);
    let ran = Arc::new(ran);
    let pool = ThreadPool::build(3).unwrap();
    thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..250 {
                    let ran = Arc::clone(&ran);
                    pool.execute(Box::new(move || {
                        ran.fetch_add(1, Ordering::SeqCst);
                    }))
                    .unwrap();
                }
            });
        }
    });
    pool.close_and_wait().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 8 * 250);
}

#[test]
fn jobs_after_close_are_rejected_and_never_run() {
    let ran = Arc::new(AtomicUsize::new(0));
    let pool = ThreadPool::build(2).unwrap();
    pool.close();
    pool.close(); // idempotent
    let counter = Arc::clone(&ran);
    let result = pool.execute(Box::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    assert_eq!(result, Err(PoolClosed));
    pool.close_and_wait().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn join_waits_for_queued_jobs() {
    const QUEUED: usize = 20;
    let ran = Arc::new(AtomicUsize::new(0));
    let pool = Arc::new(ThreadPool::build(1).unwrap());
    // The first job holds the only worker until the gate opens, so the
    // others are certainly still queued when join starts.
    let (open_gate, gate) = mpsc::channel::<()>();
    pool.execute(Box::new(move || {
        let _ = gate.recv();
    }))
    .unwrap();
    for _ in 0..QUEUED {
        let ran = Arc::clone(&ran);
        pool.execute(Box::new(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
    }
    let (joined_tx, joined) = mpsc::channel();
    let joiner = {
        let pool = Arc::clone(&pool);
        let ran = Arc::clone(&ran);
        thread::spawn(move || {
            pool.close_and_wait().unwrap();
            // What join promises: every queued job has run when it returns.
            let _ = joined_tx.send(ran.load(Ordering::SeqCst));
        })
    };
    // Join cannot return while the first job blocks the only worker.
    assert!(joined.try_recv().is_err());
    drop(open_gate);
    // Would time out (not hang) if close never reached the workers.
    assert_eq!(joined.recv_timeout(DEADLINE), Ok(QUEUED));
    joiner.join().unwrap();
    assert!(pool.execute(Box::new(|| {})).is_err());
}

#[test]
fn a_panicking_job_does_not_reduce_strength() {
    const WORKERS: usize = 4;
    let pool = ThreadPool::build(WORKERS).unwrap();
    for i in 0..WORKERS {
        pool.execute(Box::new(move || panic!("job {i} panics on purpose")))
            .unwrap();
    }
    // WORKERS jobs that can only get past the barrier if all of them run at
    // the same time, i.e. if no worker died of a panic.
    let barrier = Arc::new(Barrier::new(WORKERS));
    let (passed_tx, passed) = mpsc::channel();
    for _ in 0..WORKERS {
        let barrier = Arc::clone(&barrier);
        let passed_tx = passed_tx.clone();
        pool.execute(Box::new(move || {
            barrier.wait();
            let _ = passed_tx.send(());
        }))
        .unwrap();
    }
    for i in 0..WORKERS {
        if passed.recv_timeout(DEADLINE).is_err() {
            // The jobs stuck at the barrier would make the pool's Drop wait
            // forever; leak it so the failure is reported instead.
            std::mem::forget(pool);
            panic!("only {i} of {WORKERS} jobs passed the barrier: fewer than {WORKERS} workers run at once");
        }
    }
    pool.close_and_wait().unwrap();
}

#[test]
fn join_from_two_threads_at_once() {
    let ran = Arc::new(AtomicUsize::new(0));
    let pool = ThreadPool::build(2).unwrap();
    let (open_gate, gate) = mpsc::channel::<()>();
    {
        let ran = Arc::clone(&ran);
        pool.execute(Box::new(move || {
            let _ = gate.recv();
            ran.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
    }
    let (seen_tx, seen) = mpsc::channel();
    thread::scope(|scope| {
        for _ in 0..2 {
            let seen_tx = seen_tx.clone();
            let (pool, ran) = (&pool, &ran);
            scope.spawn(move || {
                pool.close_and_wait().unwrap();
                // Each joiner, not only the first, returns after the job.
                let _ = seen_tx.send(ran.load(Ordering::SeqCst));
            });
        }
        drop(open_gate);
        assert_eq!(seen.recv_timeout(DEADLINE), Ok(1));
        assert_eq!(seen.recv_timeout(DEADLINE), Ok(1));
    });
    pool.close_and_wait().unwrap(); // idempotent
}

#[test]
fn drop_runs_every_queued_job() {
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    assert!(finishes_in_time(move || {
        let pool = ThreadPool::build(2).unwrap();
        for _ in 0..100 {
            let counter = Arc::clone(&counter);
            pool.execute(Box::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            }))
            .unwrap();
        }
        // `pool` is dropped here.
    }));
    assert_eq!(ran.load(Ordering::SeqCst), 100);
}

#[test]
fn join_from_inside_a_job_is_an_error_not_a_deadlock() {
    let pool = Arc::new(ThreadPool::build(2).unwrap());
    let (done_tx, done) = mpsc::channel();
    let inner = Arc::clone(&pool);
    pool.execute(Box::new(move || {
        let _ = done_tx.send(inner.close_and_wait());
    }))
    .unwrap();
    assert_eq!(done.recv_timeout(DEADLINE), Ok(Err(JoinFromWorker)));
    // The pool was closed all the same.
    assert!(pool.execute(Box::new(|| {})).is_err());
    assert!(finishes_in_time(move || pool.close_and_wait().unwrap()));
}

/// Issue 9, item 7: one thread in `join` while a job calls `join` too. The
/// old `join` held its lock while joining the workers, so the job waited for
/// that lock, the joiner waited for the job's worker: a deadlock. Now the
/// handles are taken out and joined with no lock held, the job's `join`
/// returns an error at once, and both outside joiners return once every
/// worker is gone.
#[test]
fn two_joiners_and_a_join_from_a_job_all_finish() {
    let pool = Arc::new(ThreadPool::build(2).unwrap());
    let (started_tx, started) = mpsc::channel::<()>();
    let (open_gate, gate) = mpsc::channel::<()>();
    let (inner_tx, inner_result) = mpsc::channel();
    let ran_after = Arc::new(AtomicUsize::new(0));
    {
        let inner = Arc::clone(&pool);
        let ran_after = Arc::clone(&ran_after);
        pool.execute(Box::new(move || {
            let _ = started_tx.send(());
            // Held here until both outside joiners are (about to be) in `join`.
            let _ = gate.recv();
            let _ = inner_tx.send(inner.close_and_wait());
            ran_after.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
    }
    assert_eq!(started.recv_timeout(DEADLINE), Ok(()));
    let (joined_tx, joined) = mpsc::channel();
    for _ in 0..2 {
        let pool = Arc::clone(&pool);
        let joined_tx = joined_tx.clone();
        let ran_after = Arc::clone(&ran_after);
        thread::spawn(move || {
            let _ = pool.close_and_wait();
            // Every worker is gone, so the job has finished.
            let _ = joined_tx.send(ran_after.load(Ordering::SeqCst));
        });
    }
    // Neither joiner can return while the job is held at its gate.
    assert!(joined.recv_timeout(Duration::from_millis(100)).is_err());
    drop(open_gate);
    assert_eq!(inner_result.recv_timeout(DEADLINE), Ok(Err(JoinFromWorker)));
    assert_eq!(joined.recv_timeout(DEADLINE), Ok(1), "first joiner");
    assert_eq!(joined.recv_timeout(DEADLINE), Ok(1), "second joiner");
}

#[test]
fn build_reports_the_size_floor() {
    // `build` is the fallible constructor; size 0 still gets a worker.
    let pool = ThreadPool::build(0).unwrap();
    let (tx, rx) = mpsc::channel();
    pool.execute(Box::new(move || {
        let _ = tx.send(thread::current().name().map(str::to_string));
    }))
    .unwrap();
    assert_eq!(rx.recv_timeout(DEADLINE), Ok(Some("worker-0".to_string())));
}
