//! The job table and its result files: ids, statuses, panics, files on disk,
//! deduplication, restart, shutdown. Each test works in its own directory
//! under the system temp dir, removed at the end. No test sleeps: blocking
//! jobs wait on a gate channel the test opens.

use crate::common;

use common::TempDir;
use le_stats_sportif::jobs::{
    JobId, JobOutcome, JobStatus, Jobs, Refused, Work, DAMAGED_REASON, PANIC_REASON,
};
use le_stats_sportif::log::Logger;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(20);

/// The results directory inside a test's temp dir.
fn results(dir: &TempDir) -> PathBuf {
    dir.path().join("results")
}

fn open(dir: &Path, threads: usize) -> Jobs {
    Jobs::open(dir, threads, Logger::disabled()).unwrap()
}

fn constant(json: &str) -> Work {
    let json = json.to_string();
    Box::new(move || Ok(json))
}

/// A job that blocks until the returned sender is dropped (or sends).
fn gated(json: &str) -> (mpsc::Sender<()>, Work) {
    let (open, gate) = mpsc::channel::<()>();
    let json = json.to_string();
    let work: Work = Box::new(move || {
        let _ = gate.recv();
        Ok(json)
    });
    (open, work)
}

/// Waits (on the job table's Condvar, with a deadline) until job `id` is no
/// longer running.
fn wait_finished(jobs: &Jobs, id: JobId) -> JobOutcome {
    match jobs.outcome_within(id, DEADLINE) {
        Some(JobOutcome::Running) => panic!("{id} still running after {DEADLINE:?}"),
        Some(outcome) => outcome,
        None => panic!("{id} unknown"),
    }
}

/// Every job with its status, in id order: the whole list as one page.
fn all_statuses(jobs: &Jobs) -> Vec<(JobId, JobStatus)> {
    jobs.statuses_after(None, usize::MAX)
}

fn done(bytes: &str) -> JobOutcome {
    JobOutcome::Done(Arc::from(bytes.as_bytes()))
}

fn file_names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[test]
fn ids_are_in_order_and_unique_under_concurrent_submitters() {
    const SUBMITTERS: usize = 8;
    const EACH: usize = 100;
    let dir = TempDir::new("ids");
    let jobs = open(&results(&dir), 2);
    let all = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..SUBMITTERS {
            scope.spawn(|| {
                let mine: Vec<u64> = (0..EACH)
                    .map(|_| jobs.submit(constant("1")).unwrap().0)
                    .collect();
                // One submitter's ids increase: submission order.
                assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
                all.lock().unwrap().extend(mine);
            });
        }
    });
    jobs.shut_down();
    let mut all = all.into_inner().unwrap();
    all.sort_unstable();
    let expected: Vec<u64> = (1..=(SUBMITTERS * EACH) as u64).collect();
    assert_eq!(all, expected);
    assert_eq!(jobs.pending(), 0);
    let statuses = all_statuses(&jobs);
    assert_eq!(statuses.len(), SUBMITTERS * EACH);
    assert!(statuses
        .iter()
        .zip(1..)
        .all(|(&(id, status), n)| id == JobId(n) && status == JobStatus::Done));
}

#[test]
fn a_job_is_running_from_the_moment_its_id_is_returned() {
    let dir = TempDir::new("running");
    let jobs = open(&results(&dir), 1);
    let (open_first, first) = gated("1");
    let first = jobs.submit(first).unwrap();
    let second = jobs.submit(constant("2")).unwrap();
    // The first blocks the only worker: one running, one queued, both "running".
    assert_eq!(jobs.outcome(first), Some(JobOutcome::Running));
    assert_eq!(jobs.outcome(second), Some(JobOutcome::Running));
    assert_eq!(jobs.pending(), 2);
    assert_eq!(
        all_statuses(&jobs),
        [(first, JobStatus::Running), (second, JobStatus::Running)]
    );
    assert_eq!(jobs.outcome(JobId(3)), None);
    drop(open_first);
    assert_eq!(wait_finished(&jobs, first), done("1"));
    assert_eq!(wait_finished(&jobs, second), done("2"));
    assert_eq!(jobs.pending(), 0);
}

#[test]
fn a_panicking_job_is_an_error_and_the_pool_keeps_working() {
    let dir = TempDir::new("panic");
    let jobs = open(&results(&dir), 1);
    let bad = jobs
        .submit(Box::new(|| panic!("a bug in a statistic")))
        .unwrap();
    let good = jobs.submit(constant("{\"a\": 1.0}")).unwrap();
    assert_eq!(
        wait_finished(&jobs, bad),
        JobOutcome::Error(PANIC_REASON.into())
    );
    assert_eq!(wait_finished(&jobs, good), done("{\"a\": 1.0}"));
    assert_eq!(jobs.pending(), 0);
    assert!(!results(&dir).join("job_id_1.json").exists());
    assert!(results(&dir).join("job_id_2.json").exists());
}

#[test]
fn a_failing_job_reports_its_reason_and_a_restart_still_does() {
    let dir = TempDir::new("fail");
    let jobs = open(&results(&dir), 1);
    let id = jobs
        .submit(Box::new(|| Err("no data for this question".to_string())))
        .unwrap();
    assert_eq!(
        wait_finished(&jobs, id),
        JobOutcome::Error("no data for this question".into())
    );
    assert_eq!(all_statuses(&jobs), [(id, JobStatus::Error)]);
    assert!(!results(&dir).join("job_id_1.json").exists());
    // The failure is recorded, so a restarted table still answers the id.
    drop(jobs);
    let restarted = open(&results(&dir), 1);
    assert_eq!(
        restarted.outcome(id),
        Some(JobOutcome::Error("no data for this question".into()))
    );
    assert_eq!(all_statuses(&restarted), [(id, JobStatus::Error)]);
    assert_eq!(restarted.submit(constant("[]")).unwrap(), JobId(2));
}

#[test]
fn result_files_hold_exactly_the_bytes() {
    let dir = TempDir::new("files");
    let jobs = open(&results(&dir), 2);
    let texts = [
        "{\"Ohio\": 36.800000000000004}",
        "{\"global_mean\": 25.0}",
        "[]",
    ];
    let ids: Vec<JobId> = texts
        .iter()
        .map(|t| jobs.submit(constant(t)).unwrap())
        .collect();
    jobs.shut_down();
    for (id, text) in ids.iter().zip(texts) {
        let on_disk = fs::read(results(&dir).join(format!("{id}.json"))).unwrap();
        assert_eq!(on_disk, text.as_bytes());
        assert_eq!(jobs.outcome(*id), Some(done(text)));
    }
    // No temporary file is left behind.
    let names = file_names(&results(&dir));
    assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");
}

#[test]
fn identical_results_are_stored_once() {
    let dir = TempDir::new("dedup");
    // One worker: a job links to the file of an *earlier* job with its
    // bytes; two running at once may both write theirs.
    let jobs = open(&results(&dir), 1);
    let a = jobs.submit(constant("{\"same\": 1.5}")).unwrap();
    let b = jobs.submit(constant("{\"same\": 1.5}")).unwrap();
    let c = jobs.submit(constant("{\"other\": 2.5}")).unwrap();
    jobs.shut_down();
    // One job file per job, with the job's bytes…
    for id in [a, b] {
        let path = results(&dir).join(format!("{id}.json"));
        assert_eq!(fs::read(path).unwrap(), b"{\"same\": 1.5}");
    }
    // …equal ones hard links to one inode (one copy of the data)…
    let ino = |id: JobId| {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(results(&dir).join(format!("{id}.json")))
            .unwrap()
            .ino()
    };
    assert_eq!(ino(a), ino(b));
    assert_ne!(ino(a), ino(c));
    // …and one allocation in memory.
    let (Some(JobOutcome::Done(x)), Some(JobOutcome::Done(y)), Some(JobOutcome::Done(z))) =
        (jobs.outcome(a), jobs.outcome(b), jobs.outcome(c))
    else {
        panic!("not done");
    };
    assert!(Arc::ptr_eq(&x, &y));
    assert!(!Arc::ptr_eq(&x, &z));
}

#[test]
fn a_restarted_table_answers_earlier_jobs_and_continues_after_them() {
    let dir = TempDir::new("restart");
    let results = results(&dir);
    {
        let jobs = open(&results, 2);
        for text in ["[1]", "[2]", "[1]"] {
            jobs.submit(constant(text)).unwrap();
        }
        // Dropped here: every accepted job finishes first.
    }
    // What a crash leaves behind, and names that are not results.
    fs::write(results.join(".tmp-job_id_4.json"), "{\"torn").unwrap();
    fs::write(results.join(".tmp-.reserved_ids"), "12").unwrap();
    fs::write(results.join(".tmp-4242-0"), "not ours").unwrap();
    for junk in [
        "job_id_0.json",
        "job_id_x.json",
        "job_id_01.json",
        "job_id_7.json.bak",
        "7.json",
        "notes.txt",
    ] {
        fs::write(results.join(junk), "junk").unwrap();
    }
    fs::create_dir(results.join("job_id_9.json")).unwrap(); // not a file
    fs::write(dir.path().join("something"), "outside").unwrap();

    let jobs = open(&results, 2);
    assert_eq!(jobs.outcome(JobId(1)), Some(done("[1]")));
    assert_eq!(jobs.outcome(JobId(2)), Some(done("[2]")));
    assert_eq!(jobs.outcome(JobId(3)), Some(done("[1]")));
    assert_eq!(jobs.outcome(JobId(4)), None);
    assert_eq!(jobs.outcome(JobId(9)), None);
    assert_eq!(JobId::parse("../something"), None);
    assert_eq!(jobs.pending(), 0);
    let next = jobs.submit(constant("[4]")).unwrap();
    assert_eq!(next, JobId(4));
    assert_eq!(wait_finished(&jobs, next), done("[4]"));
    assert_eq!(
        all_statuses(&jobs),
        [
            (JobId(1), JobStatus::Done),
            (JobId(2), JobStatus::Done),
            (JobId(3), JobStatus::Done),
            (JobId(4), JobStatus::Done),
        ]
    );
    let names = file_names(&results);
    assert!(!names.contains(".tmp-job_id_4.json"), "{names:?}");
    assert!(!names.contains(".tmp-.reserved_ids"), "{names:?}");
    // Junk, and temp files that are not ours, are ignored, not deleted.
    assert!(names.contains("job_id_x.json") && names.contains("notes.txt"));
    assert!(names.contains(".tmp-4242-0"), "{names:?}");
}

#[test]
fn gaps_are_no_such_job() {
    let dir = TempDir::new("gaps");
    let results = results(&dir);
    fs::create_dir_all(&results).unwrap();
    fs::write(results.join("job_id_2.json"), "[2]").unwrap();
    fs::write(results.join("job_id_5.json"), "[5]").unwrap();
    let jobs = open(&results, 1);
    for missing in [1, 3, 4] {
        assert_eq!(jobs.outcome(JobId(missing)), None, "{missing}");
    }
    assert_eq!(jobs.outcome(JobId(5)), Some(done("[5]")));
    assert_eq!(jobs.submit(constant("[6]")).unwrap(), JobId(6));
    jobs.shut_down();
    let ids: Vec<u64> = all_statuses(&jobs).iter().map(|(id, _)| id.0).collect();
    assert_eq!(ids, [2, 5, 6]);
}

#[test]
fn an_absurd_planted_id_does_not_exhaust_the_ids() {
    let dir = TempDir::new("absurd");
    let results = results(&dir);
    fs::create_dir_all(&results).unwrap();
    fs::write(results.join(format!("job_id_{}.json", u64::MAX)), "[]").unwrap();
    let jobs = open(&results, 1);
    assert_eq!(jobs.submit(constant("[]")).unwrap(), JobId(1));
    assert_eq!(jobs.outcome(JobId(u64::MAX)), None);
}

#[test]
fn an_unreadable_restored_result_is_an_error() {
    let dir = TempDir::new("unreadable");
    let results = results(&dir);
    fs::create_dir_all(&results).unwrap();
    fs::write(results.join("job_id_1.json"), "[1]").unwrap();
    let jobs = open(&results, 1);
    fs::remove_file(results.join("job_id_1.json")).unwrap();
    assert!(matches!(jobs.outcome(JobId(1)), Some(JobOutcome::Error(_))));
    // Listed as it was found at start-up.
    assert_eq!(all_statuses(&jobs), [(JobId(1), JobStatus::Done)]);
}

/// Failure 4 of issue 9: the results directory vanishes (`rm -rf`). The
/// next write re-creates it (and its lock): the job is `done`, its file is
/// there, and a second server is still refused.
#[test]
fn a_vanished_results_directory_is_recreated_on_the_next_write() {
    let dir = TempDir::new("vanished");
    let results = results(&dir);
    let jobs = open(&results, 1);
    fs::remove_dir_all(&results).unwrap();
    let id = jobs.submit(constant("[1]")).unwrap();
    assert_eq!(wait_finished(&jobs, id), done("[1]"));
    assert_eq!(fs::read(results.join("job_id_1.json")).unwrap(), b"[1]");
    let again = Jobs::open(&results, 1, Logger::disabled());
    let error = again.err().expect("the re-created directory is locked");
    assert!(error.to_string().contains("another server"), "{error}");
}

/// Failure 4 of issue 9, under issue 16's contract: writing fails (here
/// the directory's path is taken by a plain file, which even root cannot
/// write into). A finished job is never `done` unsaved: it ends `error`
/// with the cause; the server is degraded and refuses new jobs with the
/// cause; nothing is kept to be written later — once writing works again,
/// the failed jobs' files never appear, and new jobs are saved.
#[test]
fn results_that_cannot_be_saved_end_as_errors_and_are_never_written_later() {
    let dir = TempDir::new("nowrite");
    let results = results(&dir);
    let log_path = dir.path().join("webserver.log");
    let logger = Logger::open(&log_path, 1 << 20, 1).unwrap();
    let jobs = Jobs::open(&results, 1, logger.clone()).unwrap();
    let (gate, blocked) = gated("[1]");
    let a = jobs.submit(blocked).unwrap();
    let c = jobs
        .submit(Box::new(|| Err("no data".to_string())))
        .unwrap();
    fs::remove_dir_all(&results).unwrap();
    fs::write(&results, "not a directory").unwrap();
    drop(gate);
    let JobOutcome::Error(reason) = wait_finished(&jobs, a) else {
        panic!("{a} not an error");
    };
    assert!(
        reason
            .as_str()
            .starts_with("the result could not be saved: ")
            && reason.as_str().contains("; resubmit once"),
        "{reason}"
    );
    assert_eq!(wait_finished(&jobs, c), JobOutcome::Error("no data".into()));
    assert_eq!(
        all_statuses(&jobs),
        [(a, JobStatus::Error), (c, JobStatus::Error)]
    );
    let cause = jobs.degraded_cause().expect("degraded");
    assert!(cause.contains("cannot save results in"), "{cause}");
    assert!(matches!(
        jobs.submit(constant("[2]")),
        Err(Refused::Degraded(_))
    ));
    assert_eq!(jobs.unsaved_jobs(), 2);
    // Writing works again: a probe (at most once a second) lets a job in.
    fs::remove_file(&results).unwrap();
    let d = common::poll(DEADLINE, || jobs.submit(constant("[3]")).ok());
    assert_eq!(wait_finished(&jobs, d), done("[3]"));
    assert_eq!(jobs.degraded_cause(), None);
    jobs.shut_down();
    assert!(
        !results.join(format!("{a}.json")).exists(),
        "never written later"
    );
    assert!(
        !results.join(format!("{c}.error")).exists(),
        "never written later"
    );
    assert_eq!(fs::read(results.join(format!("{d}.json"))).unwrap(), b"[3]");
    logger.flush();
    let log = fs::read_to_string(&log_path).unwrap();
    assert_eq!(
        log.matches("degraded: cannot save results").count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("no longer degraded").count(), 1, "{log}");
    assert!(log.contains("2 jobs ended unsaved"), "{log}");
}

/// Failure 5 of issue 16: `.reserved_ids` deleted while the server runs is
/// written again before the next id is handed out, covering every id
/// handed out; a restart after a crash then never reuses one.
#[test]
fn a_deleted_reservation_is_rewritten_before_the_next_id() {
    let dir = TempDir::new("reserve-deleted");
    let results = results(&dir);
    let jobs = open(&results, 1);
    let reservation = results.join(".reserved_ids");
    let first = jobs.submit(constant("[1]")).unwrap();
    assert_eq!(wait_finished(&jobs, first), done("[1]"));
    fs::remove_file(&reservation).unwrap();
    let second = jobs.submit(constant("[2]")).unwrap();
    assert_eq!(second, JobId(2));
    let on_disk: u64 = fs::read_to_string(&reservation).unwrap().parse().unwrap();
    assert!(on_disk > second.0, "{on_disk} does not cover {second}");
    assert_eq!(wait_finished(&jobs, second), done("[2]"));
}

/// Failure 8 of issue 16: de-duplication links only the file it wrote. A
/// client replaces `job_id_1.json` with other bytes (`mv`): a new job with
/// job 1's result gets its own file with the right bytes, not a link to the
/// replacement.
#[test]
fn a_replaced_source_file_is_not_linked() {
    use std::os::unix::fs::MetadataExt;
    let dir = TempDir::new("dedup-replaced");
    let results = results(&dir);
    let jobs = open(&results, 1);
    let first = jobs.submit(constant("[\"same\"]")).unwrap();
    assert_eq!(wait_finished(&jobs, first), done("[\"same\"]"));
    let other = dir.path().join("other.json");
    fs::write(&other, "[\"other\"]").unwrap();
    fs::rename(&other, results.join(format!("{first}.json"))).unwrap();
    let again = jobs.submit(constant("[\"same\"]")).unwrap();
    assert_eq!(wait_finished(&jobs, again), done("[\"same\"]"));
    assert_eq!(
        fs::read(results.join(format!("{again}.json"))).unwrap(),
        b"[\"same\"]"
    );
    // Equal results still share a file when the source is intact.
    let third = jobs.submit(constant("[\"same\"]")).unwrap();
    assert_eq!(wait_finished(&jobs, third), done("[\"same\"]"));
    let ino = |id: JobId| {
        fs::metadata(results.join(format!("{id}.json")))
            .unwrap()
            .ino()
    };
    assert_eq!(ino(again), ino(third));
    assert_ne!(ino(first), ino(again));
}

/// Failure 7b of issue 9: an id reservation that cannot be written refuses
/// the job instead of handing out (and advancing past) the id; the server
/// is degraded meanwhile, and the first submission after it works gets the
/// same id.
#[test]
fn an_id_reservation_that_cannot_be_written_refuses_and_does_not_advance() {
    let dir = TempDir::new("reserve-fails");
    let results = results(&dir);
    let jobs = open(&results, 1);
    fs::remove_dir_all(&results).unwrap();
    fs::write(&results, "not a directory").unwrap();
    assert_eq!(
        jobs.submit(constant("[1]")).err(),
        Some(Refused::IdsUnavailable)
    );
    assert!(matches!(
        jobs.submit(constant("[1]")),
        Err(Refused::Degraded(_))
    ));
    assert!(all_statuses(&jobs).is_empty());
    fs::remove_file(&results).unwrap();
    let id = common::poll(DEADLINE, || jobs.submit(constant("[1]")).ok());
    assert_eq!(id, JobId(1), "refused submissions used no id");
    assert_eq!(
        fs::read_to_string(results.join(".reserved_ids")).unwrap(),
        (1 + (1 << 16)).to_string()
    );
    assert_eq!(wait_finished(&jobs, id), done("[1]"));
}

/// Failure 3 of issue 9: torn result files (empty, cut in the middle) are
/// errors with a reason — never answered as `done` — and listed `error`
/// once read.
#[test]
fn damaged_restored_files_are_errors() {
    let dir = TempDir::new("damaged");
    let results = results(&dir);
    fs::create_dir_all(&results).unwrap();
    fs::write(results.join("job_id_1.json"), "").unwrap();
    fs::write(results.join("job_id_2.json"), "{\"Ohio\": 36.8, \"Io").unwrap();
    fs::write(results.join("job_id_3.json"), "{\"Ohio\": 36.8}").unwrap();
    fs::write(results.join("job_id_4.error"), "").unwrap();
    let jobs = open(&results, 1);
    let damaged = Some(JobOutcome::Error(DAMAGED_REASON.into()));
    for n in [1, 2, 4] {
        assert_eq!(jobs.outcome(JobId(n)), damaged, "job_id_{n}");
        // Still damaged when asked again (answered without re-reading).
        assert_eq!(jobs.outcome(JobId(n)), damaged, "job_id_{n}");
    }
    assert_eq!(jobs.outcome(JobId(3)), Some(done("{\"Ohio\": 36.8}")));
    assert_eq!(
        all_statuses(&jobs),
        [
            (JobId(1), JobStatus::Error),
            (JobId(2), JobStatus::Error),
            (JobId(3), JobStatus::Done),
            (JobId(4), JobStatus::Error),
        ]
    );
}

/// Failure 1 of issue 9 (in one process): a second table on a directory
/// another holds is refused, and leaves the directory as it was.
#[test]
fn a_second_table_on_a_held_directory_is_refused() {
    let dir = TempDir::new("two-tables");
    let results = results(&dir);
    let first = open(&results, 1);
    let id = first.submit(constant("[1]")).unwrap();
    assert_eq!(wait_finished(&first, id), done("[1]"));
    let before = file_names(&results);
    let error = Jobs::open(&results, 1, Logger::disabled())
        .err()
        .expect("refused");
    assert!(error.to_string().contains("another server"), "{error}");
    assert!(
        error.to_string().contains(&results.display().to_string()),
        "{error}"
    );
    assert_eq!(file_names(&results), before);
    drop(first);
    // Once the first is gone the directory is free again.
    let second = open(&results, 1);
    assert_eq!(second.submit(constant("[2]")).unwrap(), JobId(2));
}

/// Failure 8 of issue 9: the folder is flat — only regular files, job files
/// and dotfiles — and a client may remove every entry at any time.
#[test]
fn the_results_folder_is_flat_and_clients_may_empty_it() {
    let dir = TempDir::new("flat");
    let results = results(&dir);
    let jobs = open(&results, 2);
    let mut ids = Vec::new();
    for round in 0..3 {
        for i in 0..20 {
            // Few distinct texts: most files are hard links to others.
            ids.push(jobs.submit(constant(&format!("[{}]", i % 3))).unwrap());
        }
        // Remove every entry one by one, while jobs may still run.
        for entry in fs::read_dir(&results).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            assert!(entry.file_type().unwrap().is_file(), "{name} is not a file");
            assert!(
                name.starts_with('.') || (name.starts_with("job_id_") && name.ends_with(".json")),
                "round {round}: unexpected {name}"
            );
            // A file a worker just renamed away may be gone already.
            match fs::remove_file(entry.path()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("remove {name}: {e}"),
            }
        }
    }
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            wait_finished(&jobs, *id),
            done(&format!("[{}]", i % 20 % 3))
        );
    }
    // New jobs complete and are written, links or not.
    let fresh: Vec<JobId> = (0..3)
        .map(|i| jobs.submit(constant(&format!("[{i}]"))).unwrap())
        .collect();
    jobs.shut_down();
    for (i, id) in fresh.iter().enumerate() {
        let text = fs::read_to_string(results.join(format!("{id}.json"))).unwrap();
        assert_eq!(text, format!("[{i}]"));
    }
}

#[test]
fn after_stop_accepting_submit_is_refused_and_join_waits_for_the_accepted() {
    const QUEUED: usize = 5;
    let dir = TempDir::new("shutdown");
    let jobs = Arc::new(open(&results(&dir), 1));
    let (open_gate, first) = gated("[0]");
    let mut accepted = vec![jobs.submit(first).unwrap()];
    for i in 1..=QUEUED {
        accepted.push(jobs.submit(constant(&format!("[{i}]"))).unwrap());
    }
    jobs.stop_accepting();
    jobs.stop_accepting(); // idempotent
    assert!(!jobs.is_accepting());
    assert_eq!(
        jobs.submit(constant("[]")).err(),
        Some(Refused::ShuttingDown)
    );
    // Reads keep working; nothing has run past the gate yet.
    assert_eq!(jobs.pending(), QUEUED + 1);
    assert_eq!(jobs.outcome(accepted[QUEUED]), Some(JobOutcome::Running));

    let (joined_tx, joined) = mpsc::channel();
    let joiner = {
        let jobs = Arc::clone(&jobs);
        thread::spawn(move || {
            jobs.shut_down();
            let _ = joined_tx.send(jobs.pending());
        })
    };
    drop(open_gate);
    assert_eq!(joined.recv_timeout(DEADLINE), Ok(0));
    joiner.join().unwrap();
    for (i, id) in accepted.iter().enumerate() {
        assert_eq!(jobs.outcome(*id), Some(done(&format!("[{i}]"))));
    }
    jobs.shut_down(); // idempotent
    assert_eq!(all_statuses(&jobs).len(), QUEUED + 1);
}

#[test]
fn job_events_are_logged() {
    let dir = TempDir::new("logged");
    let log_path = dir.path().join("webserver.log");
    let logger = Logger::open(&log_path, 1 << 20, 1).unwrap();
    let jobs = Jobs::open(&results(&dir), 1, logger.clone()).unwrap();
    jobs.submit(constant("[1]")).unwrap();
    jobs.submit(Box::new(|| Err("bad question".to_string())))
        .unwrap();
    jobs.shut_down();
    logger.flush();
    let log = fs::read_to_string(&log_path).unwrap();
    let lines: Vec<&str> = log.lines().map(|l| &l[24..]).collect();
    assert_eq!(lines.len(), 4, "{log}");
    // Each job's `submitted` first (`submit` logs it). The ends come in
    // either order: in durable mode job 1 is logged `done` after the
    // directory flush, which may come after job 2 failed.
    let (submitted, mut ends): (Vec<&str>, Vec<&str>) =
        lines.iter().partition(|l| l.contains(" submitted"));
    assert_eq!(
        submitted,
        [" INFO job_id_1 submitted", " INFO job_id_2 submitted"]
    );
    assert_eq!(lines[0], " INFO job_id_1 submitted", "{log}");
    ends.sort_unstable();
    assert_eq!(ends[0], " ERROR job_id_2 error: bad question");
    assert!(ends[1].starts_with(" INFO job_id_1 done in "), "{log}");
    assert!(ends[1].ends_with("ms"), "{log}");
}

/// Resident memory of this process in kB (Linux), for the measurement below.
fn rss_kb() -> Option<u64> {
    status_kb("VmRSS:")
}

/// A `kB` field of `/proc/self/status` (Linux).
fn status_kb(field: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Not a check but a measurement (run with `--ignored --nocapture`):
/// memory and time for 200 000 jobs over 500 distinct results, then a
/// restart over their files.
#[test]
#[ignore = "a measurement, run by hand: cargo test --release --test integration measure_200k_jobs -- --ignored --nocapture"]
fn measure_200k_jobs() {
    const JOBS: usize = 200_000;
    let dir = TempDir::new("measure");
    let before = rss_kb();
    let started = Instant::now();
    let jobs = open(&results(&dir), 2);
    for i in 0..JOBS {
        // Like the server's work: small captures, the text built on the worker.
        let work = move || {
            Ok(format!(
                "{{\"Ohio\": {}.5, \"pad\": \"{:0>200}\"}}",
                i % 500,
                0
            ))
        };
        jobs.submit(Box::new(work)).unwrap();
        // Keep the queue short, as clients waiting for answers do: this
        // measures the table, not a backlog of 200 000 queued closures.
        while jobs.pending() > 1000 {
            thread::sleep(Duration::from_millis(1));
        }
    }
    jobs.shut_down();
    let ran = started.elapsed();
    let after = rss_kb();
    assert_eq!(all_statuses(&jobs).len(), JOBS);
    let names = file_names(&results(&dir));
    assert_eq!(
        names.iter().filter(|n| n.starts_with("job_id_")).count(),
        JOBS
    );
    eprintln!(
        "{JOBS} jobs: {ran:?}, RSS {before:?} kB -> {after:?} kB, peak {:?} kB",
        status_kb("VmHWM:")
    );
    drop(jobs);
    let started = Instant::now();
    let jobs = open(&results(&dir), 2);
    eprintln!(
        "restart over {} files: {:?}, RSS {:?} kB",
        all_statuses(&jobs).len(),
        started.elapsed(),
        rss_kb()
    );
    assert_eq!(jobs.submit(constant("[]")).unwrap().0, JOBS as u64 + 1);
}

#[test]
fn a_full_queue_refuses_until_a_job_finishes() {
    let dir = TempDir::new("queue-full");
    let jobs = Jobs::open_with_max_pending(&results(&dir), 1, 2, Logger::disabled()).unwrap();
    let (open_gate, first) = gated("[0]");
    let first = jobs.submit(first).unwrap();
    let second = jobs.submit(constant("[1]")).unwrap();
    // Two pending (one running behind the gate, one queued): the cap.
    assert_eq!(jobs.submit(constant("[2]")).err(), Some(Refused::QueueFull));
    assert_eq!(jobs.pending(), 2);
    open_gate.send(()).unwrap();
    assert_eq!(wait_finished(&jobs, first), done("[0]"));
    assert_eq!(wait_finished(&jobs, second), done("[1]"));
    // The refused submission used no id: the next one is job 3.
    assert_eq!(jobs.submit(constant("[3]")).unwrap(), JobId(3));
}

#[test]
fn outcome_within_returns_as_soon_as_the_job_finishes() {
    let dir = TempDir::new("outcome-within");
    let jobs = Arc::new(open(&results(&dir), 1));
    let (open_gate, work) = gated("[7]");
    let id = jobs.submit(work).unwrap();
    // Still running after a short wait: the gate is closed.
    assert_eq!(
        jobs.outcome_within(id, Duration::from_millis(20)),
        Some(JobOutcome::Running)
    );
    // A waiter with a long bound is woken by the finish, not by its timeout.
    let waiter = {
        let jobs = Arc::clone(&jobs);
        thread::spawn(move || {
            let start = Instant::now();
            (jobs.outcome_within(id, DEADLINE), start.elapsed())
        })
    };
    open_gate.send(()).unwrap();
    let (outcome, waited) = waiter.join().unwrap();
    assert_eq!(outcome, Some(done("[7]")));
    assert!(waited < DEADLINE, "woken by the finish, not the timeout");
    assert_eq!(jobs.outcome_within(JobId(99), DEADLINE), None);
}

/// A restart after a crash never gives a job an id the crashed run had
/// handed out. The crash is simulated by copying the directory (without its
/// lock) while the first table still has a job running, as a SIGKILL would
/// leave it.
#[test]
fn ids_handed_out_before_a_crash_are_never_given_again() {
    let dir = TempDir::new("reservation");
    let first = open(&results(&dir), 1);
    let finished = first.submit(constant("[1]")).unwrap();
    assert_eq!(wait_finished(&first, finished), done("[1]"));
    let (open_gate, unfinished) = gated("[2]");
    let unfinished = first.submit(unfinished).unwrap();
    assert_eq!(unfinished, JobId(2));

    // "Restart" on what is on disk while job 2 never finished.
    let crashed = dir.path().join("crashed");
    fs::create_dir_all(&crashed).unwrap();
    for name in file_names(&results(&dir)) {
        if name != ".lock" {
            fs::copy(results(&dir).join(&name), crashed.join(&name)).unwrap();
        }
    }
    let second = open(&crashed, 1);
    let next = second.submit(constant("[3]")).unwrap();
    assert!(
        next > unfinished,
        "{next} reuses an id handed out before the crash"
    );
    assert_eq!(
        second.outcome(unfinished),
        None,
        "job 2 never finished anywhere"
    );
    drop(second);
    open_gate.send(()).unwrap();
    // (A clean shutdown leaves no gap: see the restart test above, whose
    // numbering goes on at 4 after 3 jobs.)
}

/// A clean shutdown shrinks the id reservation to the next id; a submission
/// refused after it (a POST after `graceful_shutdown`) must not write a new
/// block, or the restart numbers on 65,536 ids later.
#[test]
fn a_submission_after_shutdown_leaves_no_gap_in_the_ids() {
    let dir = TempDir::new("reserve-after-shutdown");
    let results = results(&dir);
    let reserved = || fs::read_to_string(results.join(".reserved_ids")).unwrap();
    {
        let jobs = open(&results, 1);
        let first = jobs.submit(constant("[1]")).unwrap();
        assert_eq!(wait_finished(&jobs, first), done("[1]"));
        jobs.shut_down();
        assert_eq!(reserved(), "2");
        assert_eq!(
            jobs.submit(constant("[2]")).err(),
            Some(Refused::ShuttingDown)
        );
        assert_eq!(
            reserved(),
            "2",
            "a refused submission wrote the reservation"
        );
    }
    let jobs = open(&results, 1);
    assert_eq!(jobs.submit(constant("[2]")).unwrap(), JobId(2));
}

/// Durable mode (the default): jobs turn `done` only after the persister's
/// directory flush, and a burst shares flushes; `--no-fsync` flushes
/// nothing. (That flushes are shared is pinned down deterministically by
/// `jobs::run::tests::a_burst_of_items_shares_flushes`, and that
/// `done` comes only after the flush by the unit test
/// `jobs::tests::a_durable_job_is_done_only_after_its_directory_flush`.)
#[test]
fn durable_jobs_are_flushed_and_no_fsync_jobs_are_not() {
    use le_stats_sportif::jobs::JobsOptions;
    use le_stats_sportif::results::ResultsLock;
    const JOBS: usize = 200;
    for durable in [true, false] {
        let dir = TempDir::new("durable-jobs");
        let lock = ResultsLock::acquire(&results(&dir)).unwrap();
        let options = JobsOptions {
            threads: 2,
            max_pending: JOBS,
            durable,
        };
        let jobs = Jobs::open_locked(lock, options, Logger::disabled()).unwrap();
        let ids: Vec<JobId> = (0..JOBS)
            .map(|i| jobs.submit(constant(&format!("[{}]", i % 7))).unwrap())
            .collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(wait_finished(&jobs, *id), done(&format!("[{}]", i % 7)));
            // `done` implies its file is in place.
            assert!(results(&dir).join(format!("{id}.json")).is_file());
        }
        let flushes = jobs.directory_flushes();
        if durable {
            // One for the id reservation, at least one for the results, and
            // never more than one per job.
            assert!(
                (2..=JOBS as u64 + 1).contains(&flushes),
                "{flushes} flushes"
            );
        } else {
            assert_eq!(flushes, 0);
        }
        jobs.shut_down();
        assert_eq!(jobs.pending(), 0);
    }
}

/// A waiter is woken by a job that *fails*, too — not only by one that is
/// done (the persister records both; a lost wake-up would show here as a
/// wait that lasts the whole bound).
#[test]
fn a_waiter_is_woken_by_a_failing_job() {
    let dir = TempDir::new("woken-by-error");
    let jobs = Arc::new(open(&results(&dir), 1));
    let (open_gate, gate) = mpsc::channel::<()>();
    let id = jobs
        .submit(Box::new(move || {
            let _ = gate.recv();
            Err("no data".to_string())
        }))
        .unwrap();
    let waiter = {
        let jobs = Arc::clone(&jobs);
        thread::spawn(move || {
            let start = Instant::now();
            (jobs.outcome_within(id, DEADLINE), start.elapsed())
        })
    };
    open_gate.send(()).unwrap();
    let (outcome, waited) = waiter.join().unwrap();
    assert_eq!(outcome, Some(JobOutcome::Error("no data".into())));
    assert!(waited < DEADLINE, "woken by the failure, not the timeout");
}

/// Re-creating a vanished directory loses its `.reserved_ids`: the next
/// submission writes the reservation again, covering every id handed out,
/// before it hands out its id.
#[test]
fn a_re_created_directory_gets_its_id_reservation_back() {
    let dir = TempDir::new("re-reserve");
    let results = results(&dir);
    let jobs = open(&results, 1);
    let first = jobs.submit(constant("[1]")).unwrap();
    assert_eq!(wait_finished(&jobs, first), done("[1]"));
    assert_eq!(
        fs::read_to_string(results.join(".reserved_ids")).unwrap(),
        (1 + (1 << 16)).to_string()
    );
    fs::remove_dir_all(&results).unwrap();
    // Its result write re-creates the directory.
    let second = jobs.submit(constant("[2]")).unwrap();
    assert_eq!(wait_finished(&jobs, second), done("[2]"));
    assert_eq!(fs::read(results.join("job_id_2.json")).unwrap(), b"[2]");
    let third = jobs.submit(constant("[3]")).unwrap();
    assert_eq!(third, JobId(3));
    assert_eq!(
        fs::read_to_string(results.join(".reserved_ids")).unwrap(),
        (1 + (1 << 16)).to_string()
    );
    assert_eq!(wait_finished(&jobs, third), done("[3]"));
}

/// Ids stay below `MAX_RESTORED_ID` (2^48 - 1: the scoreboard packs a job
/// id into 48 bits): a file above it is ignored, the last id below it is
/// handed out, the next submission is refused, and the reservation never
/// records more, so a restart is refused too.
#[test]
fn ids_stop_below_the_scoreboard_limit() {
    use le_stats_sportif::results::MAX_RESTORED_ID;
    assert_eq!(MAX_RESTORED_ID, (1 << 48) - 1);
    let dir = TempDir::new("exhausted");
    let results = results(&dir);
    fs::create_dir_all(&results).unwrap();
    let last = MAX_RESTORED_ID - 1;
    fs::write(results.join(format!("job_id_{}.json", last - 1)), "[0]").unwrap();
    fs::write(results.join(format!("job_id_{MAX_RESTORED_ID}.json")), "[]").unwrap();
    let jobs = open(&results, 1);
    assert_eq!(jobs.outcome(JobId(MAX_RESTORED_ID)), None);
    let id = jobs.submit(constant("[1]")).unwrap();
    assert_eq!(id, JobId(last));
    assert_eq!(wait_finished(&jobs, id), done("[1]"));
    assert!(matches!(
        jobs.submit(constant("[2]")),
        Err(Refused::IdsExhausted)
    ));
    assert_eq!(
        fs::read_to_string(results.join(".reserved_ids")).unwrap(),
        MAX_RESTORED_ID.to_string()
    );
    jobs.shut_down();
    drop(jobs);
    let restarted = open(&results, 1);
    assert!(matches!(
        restarted.submit(constant("[3]")),
        Err(Refused::IdsExhausted)
    ));
}
