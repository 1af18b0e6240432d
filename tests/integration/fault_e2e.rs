//! Issue 16's failures against the real binary, with faults injected by
//! `tests/faults/shim.c` (`LD_PRELOAD`; built here with gcc): writes
//! failing with `ENOSPC`, renames with `EROFS`, flushes with `EIO` or held
//! until the test releases them, links with `EMLINK`. The shim logs every
//! flush, rename and link under the results directory, in call order; the
//! test appends `answered job_id_N` to the same log when it sees `done`.
//! After each fault the server is killed (`SIGKILL`, or `SIGTERM` where
//! shutdown is the point) and restarted without the shim: every job ever
//! answered `done` must be served identically.
//!
//! A real full tmpfs or read-only remount needs `CAP_SYS_ADMIN`; these
//! tests use the shim only, which needs no privilege.

use crate::common;

use common::{HttpResponse, Launch, ServerProcess, TempDir};
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const OBESITY: &str = "Percent of adults aged 18 years and older who have obesity";
const DEADLINE: Duration = Duration::from_secs(30);

/// A distinct job body: the obesity mean of one state.
fn state_body(state: &str) -> String {
    serde_json::json!({"question": OBESITY, "state": state}).to_string()
}

const STATES: [&str; 12] = [
    "Ohio", "Iowa", "Utah", "Texas", "Maine", "Idaho", "Kansas", "Oregon", "Nevada", "Alaska",
    "Hawaii", "Vermont",
];

/// The shim, built once per test run into cargo's temp dir.
fn shim() -> &'static Path {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/faults/shim.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fault_shim.so");
        let status = Command::new("gcc")
            .args(["-shared", "-fPIC", "-O1", "-o"])
            .arg(&out)
            .arg(&source)
            .arg("-ldl")
            .status()
            .unwrap_or_else(|e| {
                panic!("gcc is needed to build the fault shim ({e}): .ci/run installs it")
            });
        assert!(status.success(), "gcc failed on {}", source.display());
        out
    })
}

/// One scenario: a temp dir, the shim's control directory and log.
struct Faults {
    dir: TempDir,
    results: PathBuf,
    control: PathBuf,
    log: PathBuf,
}

impl Faults {
    /// `None` (saying so loudly) without the course subset.
    fn new(tag: &str) -> Option<Faults> {
        if common::subset_csv().is_none() {
            eprintln!("SKIPPED fault_e2e {tag}: no course subset in ../shared");
            return None;
        }
        let dir = TempDir::new(tag);
        // Canonical: the shim compares against /proc/self/fd's paths.
        let root = fs::canonicalize(dir.path()).unwrap();
        let control = root.join("control");
        fs::create_dir_all(&control).unwrap();
        Some(Faults {
            results: root.join("results"),
            log: root.join("fault.log"),
            control,
            dir,
        })
    }

    /// `kill -9`, then a restart without the shim.
    fn kill_and_restart(&self, mut server: ServerProcess) -> ServerProcess {
        server.signal("KILL");
        server.wait_exit(DEADLINE);
        self.restart()
    }

    fn start(&self, extra: &[&str]) -> ServerProcess {
        let data = common::subset_csv().expect("the course subset");
        // `env` execs the server with the shim loaded: the child's pid is
        // the server's.
        let setting = |name: &str, path: &Path| format!("{name}={}", path.display());
        let launch = Launch {
            wrapper: vec![
                "env".to_string(),
                setting("LD_PRELOAD", shim()),
                setting("FAULT_DIR", &self.results),
                setting("FAULT_CONTROL", &self.control),
                setting("FAULT_LOG", &self.log),
            ],
            ..Launch::default()
        };
        ServerProcess::start_with(&data, self.dir.path(), extra, launch)
    }

    /// The same directory, without the shim.
    fn restart(&self) -> ServerProcess {
        let data = common::subset_csv().expect("the course subset");
        ServerProcess::start(&data, self.dir.path(), &[])
    }

    fn set(&self, fault: &str) {
        fs::write(self.control.join(fault), "").unwrap();
    }

    fn clear(&self, fault: &str) {
        fs::remove_file(self.control.join(fault)).unwrap();
    }

    fn fault_log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn server_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("webserver.log")).unwrap_or_default()
    }

    /// Appends `answered ID` to the shim's log: after every call the
    /// server made before it answered.
    fn note_answer(&self, id: &str) {
        let mut log = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.log)
            .unwrap();
        log.write_all(format!("answered {id}\n").as_bytes())
            .unwrap();
    }

    /// Submits `body` and waits for its end; the id and the final answer,
    /// or `Err` with the refusal.
    fn run(
        &self,
        server: &ServerProcess,
        body: &str,
    ) -> Result<(String, HttpResponse), HttpResponse> {
        let r = server.post("/api/state_mean", body);
        if r.status != 200 {
            return Err(r);
        }
        let id = r.json()["job_id"].as_str().unwrap().to_string();
        let answer = server.wait_result(&id);
        if answer.json()["status"] == "done" {
            self.note_answer(&id);
        }
        Ok((id, answer))
    }
}

/// Every job answered `done` is served identically by `server`.
fn served_identically(server: &ServerProcess, done: &BTreeMap<String, String>) {
    assert!(!done.is_empty());
    for (id, text) in done {
        let r = server.get(&format!("/api/get_results/{id}"));
        assert_eq!(&r.text(), text, "{id} after the restart");
    }
}

/// The flush order for every job answered `done`: its file's data flush,
/// then its rename (or link) into place, then a directory flush — all
/// before the answer, all successful.
fn assert_saved_before_answered(log: &str, results: &Path, done: &BTreeMap<String, String>) {
    let lines: Vec<&str> = log.lines().collect();
    let dir = results.display().to_string();
    for id in done.keys() {
        let answered = lines
            .iter()
            .position(|l| *l == format!("answered {id}"))
            .unwrap_or_else(|| panic!("{id} never answered:\n{log}"));
        let before = &lines[..answered];
        let final_name = format!("{dir}/{id}.json = 0");
        let placed = before
            .iter()
            .rposition(|l| {
                (l.starts_with("rename ") || l.starts_with("link ")) && l.ends_with(&final_name)
            })
            .unwrap_or_else(|| panic!("{id}: not renamed or linked before its answer:\n{log}"));
        if before[placed].starts_with("rename ") {
            let data_flush = format!("fdatasync {dir}/.tmp-{id}.json = 0");
            assert!(
                before[..placed].contains(&data_flush.as_str()),
                "{id}: its data was not flushed before the rename:\n{log}"
            );
        }
        let dir_flush = format!("fsync {dir} = 0");
        assert!(
            before[placed..].contains(&dir_flush.as_str()),
            "{id}: the directory was not flushed between the rename and the answer:\n{log}"
        );
    }
}

/// Failures 1 and 3 of issue 16 (and 2, for a read-only mount): writes
/// failing with `ENOSPC`, then renames with `EROFS`, then opens with
/// `EMFILE`. A job whose result
/// cannot be saved is answered `error` with the cause and what to do, never
/// `done`; the server is degraded (503 with `Retry-After` for new jobs,
/// reads served, `/api/status` and `/metrics` say so, the log says it once
/// when it starts and once when it ends) and recovers by itself once
/// saving works; no failed result is written later; after `kill -9` every
/// `done` is served identically.
#[test]
fn a_full_disk_answers_errors_then_recovers() {
    let Some(faults) = Faults::new("fault-enospc") else {
        return;
    };
    let server = faults.start(&[]);
    let mut states = STATES.iter();
    let mut done = BTreeMap::new();
    for _ in 0..2 {
        let (id, answer) = faults
            .run(&server, &state_body(states.next().unwrap()))
            .unwrap();
        assert_eq!(answer.json()["status"], "done");
        done.insert(id, answer.text());
    }
    for (fault, cause, advice) in [
        (
            "write.ENOSPC",
            "No space left on device (os error 28)",
            "resubmit once the disk has room",
        ),
        (
            "rename.EROFS",
            "Read-only file system (os error 30)",
            "resubmit once the results directory is writable again",
        ),
        (
            "open.EMFILE",
            "Too many open files (os error 24)",
            "resubmit once the server has file descriptors to spare",
        ),
    ] {
        faults.set(fault);
        let (failed, answer) = faults
            .run(&server, &state_body(states.next().unwrap()))
            .unwrap();
        assert_eq!(
            answer.json()["reason"],
            format!("the result could not be saved: {cause}; {advice}"),
            "{fault}"
        );
        let refused = faults
            .run(&server, &state_body(states.next().unwrap()))
            .unwrap_err();
        assert_eq!(refused.status, 503, "{fault}");
        assert_eq!(refused.header("retry-after"), Some("1"));
        let reason = refused.json()["reason"].as_str().unwrap().to_string();
        assert!(reason.contains(cause), "{reason}");
        let status = server.get("/api/status").json();
        assert_eq!(status["saving"]["state"], "degraded", "{status}");
        assert!(status["saving"]["cause"].as_str().unwrap().contains(cause));
        assert!(server.get("/metrics").text().contains("\nlss_degraded 1\n"));
        // Reads keep working.
        for (id, text) in &done {
            assert_eq!(&server.get(&format!("/api/get_results/{id}")).text(), text);
        }
        faults.clear(fault);
        // Recovers by itself: a probe at most once a second.
        let (id, answer) = common::poll(DEADLINE, || {
            faults
                .run(&server, &state_body(states.clone().next().unwrap()))
                .ok()
        });
        states.next();
        assert_eq!(answer.json()["status"], "done");
        done.insert(id, answer.text());
        assert_eq!(server.get("/api/status").json()["saving"]["state"], "ok");
        assert!(server.get("/metrics").text().contains("\nlss_degraded 0\n"));
        // No result is kept to be written later (failure 3).
        let r = server.get(&format!("/api/get_results/{failed}"));
        assert_eq!(r.json()["status"], "error");
        assert!(!faults.results.join(format!("{failed}.json")).exists());
    }
    let log = common::poll(DEADLINE, || {
        let log = faults.server_log();
        (log.matches("no longer degraded").count() == 3).then_some(log)
    });
    assert_eq!(
        log.matches("degraded: cannot save results").count(),
        3,
        "{log}"
    );
    assert_saved_before_answered(&faults.fault_log(), &faults.results, &done);
    served_identically(&faults.kill_and_restart(server), &done);
}

/// Failure 2 of issue 16: while every flush fails with `EIO`, no job is
/// answered `done`; the shim's log shows, for every job answered `done`,
/// its data flush, its rename and the directory flush before the answer.
/// `SIGTERM` while degraded: the queued jobs still end, as `error` with
/// the cause; the process exits 0 and the log says how many ended unsaved;
/// after a restart every `done` is served identically and no failed job is.
#[test]
fn failing_flushes_never_answer_done() {
    let Some(faults) = Faults::new("fault-eio") else {
        return;
    };
    let mut server = faults.start(&["--threads", "1"]);
    let mut done = BTreeMap::new();
    for state in &STATES[..2] {
        let (id, answer) = faults.run(&server, &state_body(state)).unwrap();
        assert_eq!(answer.json()["status"], "done");
        done.insert(id, answer.text());
    }
    faults.set("fsync.EIO");
    let (failed, answer) = faults.run(&server, &state_body(STATES[2])).unwrap();
    assert_eq!(
        answer.json()["reason"],
        "the result could not be saved: Input/output error (os error 5); \
         resubmit once the results directory works again (the server log says more)"
    );
    for state in &STATES[3..6] {
        let refused = faults.run(&server, &state_body(state)).unwrap_err();
        assert_eq!(refused.status, 503);
    }
    // Three jobs queued behind a held flush, then the flushes fail and
    // the server is told to stop.
    faults.clear("fsync.EIO");
    let (id, answer) = common::poll(DEADLINE, || {
        faults.run(&server, &state_body(STATES[6])).ok()
    });
    assert_eq!(answer.json()["status"], "done");
    done.insert(id, answer.text());
    faults.set("hold.fsync");
    let queued: Vec<String> = STATES[7..10]
        .iter()
        .map(|state| server.submit("state_mean", &state_body(state)))
        .collect();
    common::poll(DEADLINE, || {
        faults.fault_log().contains("\nhold ").then_some(())
    });
    faults.set("fsync.EIO");
    server.signal("TERM");
    faults.clear("hold.fsync");
    assert_eq!(server.wait_exit(DEADLINE), Some(0));
    let log = faults.server_log();
    assert!(log.contains("4 jobs ended unsaved"), "{log}");
    assert_saved_before_answered(&faults.fault_log(), &faults.results, &done);
    let restarted = faults.restart();
    served_identically(&restarted, &done);
    for id in queued.iter().chain([&failed]) {
        let r = restarted.get(&format!("/api/get_results/{id}"));
        // Its error record could not be flushed either: unknown (404) or
        // an error, never `done`.
        assert!(
            r.status == 404 || r.json()["status"] == "error",
            "{id}: {}",
            r.text()
        );
    }
}

/// Failures 5 and 6 of issue 16: `.reserved_ids` deleted while the server
/// runs is rewritten before the next id is handed out, and while that
/// rewrite's flush is held by the shim, `/api/num_jobs`, `/metrics` and
/// `/api/status` answer (the flush is released only after they did). After
/// `kill -9`, no id a client holds is handed out again.
#[test]
fn a_held_reservation_flush_blocks_no_reader() {
    let Some(faults) = Faults::new("fault-reserve") else {
        return;
    };
    let server = faults.start(&[]);
    let mut done = BTreeMap::new();
    let (first, answer) = faults.run(&server, &state_body(STATES[0])).unwrap();
    done.insert(first, answer.text());
    faults.set("hold.reserved");
    fs::remove_file(faults.results.join(".reserved_ids")).unwrap();
    let addr = server.addr;
    let submitter = std::thread::spawn(move || {
        common::http(
            addr,
            "POST",
            "/api/state_mean",
            Some(state_body(STATES[1]).as_bytes()),
        )
    });
    // The old binary never rewrites it: this poll then fails.
    common::poll(Duration::from_secs(10), || {
        let log = faults.fault_log();
        log.contains("hold ").then_some(())
    });
    assert!(
        faults.fault_log().contains("hold ") && faults.fault_log().contains(".tmp-.reserved_ids")
    );
    assert_eq!(server.get("/api/num_jobs").status, 200);
    assert_eq!(server.get("/metrics").status, 200);
    assert_eq!(server.get("/api/status").status, 200);
    assert!(
        !submitter.is_finished(),
        "the submission waits for the reservation"
    );
    faults.clear("hold.reserved");
    let submitted = submitter.join().unwrap();
    assert_eq!(submitted.status, 200, "{}", submitted.text());
    let second = submitted.json()["job_id"].as_str().unwrap().to_string();
    let reserved: u64 = fs::read_to_string(faults.results.join(".reserved_ids"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(reserved > 2, "{reserved}");
    let answer = server.wait_result(&second);
    assert_eq!(answer.json()["status"], "done");
    done.insert(second, answer.text());
    let restarted = faults.kill_and_restart(server);
    served_identically(&restarted, &done);
    let next = restarted.submit("state_mean", &state_body(STATES[2]));
    assert!(!done.contains_key(&next), "{next} handed out again");
}

/// Failure 8 of issue 16: de-duplication links only the file it wrote. A
/// client replaces a result file (`mv`); the same query again gets its own
/// file with its own bytes. A link that fails (`EMLINK`) falls back to
/// writing the bytes. After `kill -9` both are served identically.
#[test]
fn de_duplication_links_only_the_file_it_wrote() {
    let Some(faults) = Faults::new("fault-dedup") else {
        return;
    };
    let server = faults.start(&[]);
    let (first, answer) = faults.run(&server, &state_body(STATES[0])).unwrap();
    let same = answer.text();
    let (other, _) = faults.run(&server, &state_body(STATES[1])).unwrap();
    fs::rename(
        faults.results.join(format!("{other}.json")),
        faults.results.join(format!("{first}.json")),
    )
    .unwrap();
    let mut done = BTreeMap::new();
    let (again, answer) = faults.run(&server, &state_body(STATES[0])).unwrap();
    assert_eq!(answer.text(), same);
    done.insert(again, same.clone());
    faults.set("link.EMLINK");
    let (linked, answer) = faults.run(&server, &state_body(STATES[0])).unwrap();
    assert_eq!(answer.text(), same);
    assert!(
        faults.fault_log().contains(&format!("/{linked}.json = 31")),
        "no link was tried:\n{}",
        faults.fault_log()
    );
    done.insert(linked, same);
    served_identically(&faults.kill_and_restart(server), &done);
}

/// A server started on a results directory it cannot write (every open
/// for writing fails with `EROFS`) starts degraded: it says why in its log,
/// serves the results it can read, refuses new jobs with the cause, and
/// recovers by itself once the directory is writable.
#[test]
fn a_read_only_directory_starts_degraded() {
    let Some(faults) = Faults::new("fault-readonly") else {
        return;
    };
    let mut server = faults.start(&[]);
    let mut done = BTreeMap::new();
    let (id, answer) = faults.run(&server, &state_body(STATES[0])).unwrap();
    done.insert(id, answer.text());
    server.signal("KILL");
    server.wait_exit(DEADLINE);
    faults.set("open.EROFS");
    let server = faults.start(&[]);
    let status = server.get("/api/status").json();
    assert_eq!(status["saving"]["state"], "degraded", "{status}");
    served_identically(&server, &done);
    let refused = server.post("/api/state_mean", &state_body(STATES[1]));
    assert_eq!(refused.status, 503);
    assert!(
        refused.text().contains("Read-only file system"),
        "{}",
        refused.text()
    );
    let log = common::poll(DEADLINE, || {
        let log = faults.server_log();
        log.contains("starting degraded").then_some(log)
    });
    assert!(log.contains("Read-only file system (os error 30)"), "{log}");
    faults.clear("open.EROFS");
    let (_, answer) = common::poll(DEADLINE, || {
        faults.run(&server, &state_body(STATES[1])).ok()
    });
    assert_eq!(answer.json()["status"], "done");
}

/// A results directory the server creates is flushed into its parent
/// before any job is answered `done`: without that flush a power loss
/// could take the new directory, and every result in it, away. The shim
/// watches the parent here, so its log shows the parent's flush.
#[test]
fn a_new_results_directory_s_entry_is_flushed_before_the_first_done() {
    let Some(faults) = Faults::new("fault-parent") else {
        return;
    };
    let root = faults.results.parent().unwrap().to_path_buf();
    assert!(!faults.results.exists());
    let data = common::subset_csv().expect("the course subset");
    let setting = |name: &str, path: &Path| format!("{name}={}", path.display());
    let launch = Launch {
        wrapper: vec![
            "env".to_string(),
            setting("LD_PRELOAD", shim()),
            setting("FAULT_DIR", &root),
            setting("FAULT_CONTROL", &faults.control),
            setting("FAULT_LOG", &faults.log),
        ],
        ..Launch::default()
    };
    let server = ServerProcess::start_with(&data, faults.dir.path(), &[], launch);
    let (id, answer) = faults.run(&server, &state_body("Ohio")).unwrap();
    assert_eq!(answer.json()["status"], "done");
    let log = faults.fault_log();
    let parent_flush = format!("fsync {} = 0", root.display());
    let flushed = log.lines().position(|l| l == parent_flush);
    let answered = log.lines().position(|l| l == format!("answered {id}"));
    assert!(
        matches!((flushed, answered), (Some(f), Some(a)) if f < a),
        "the parent was not flushed before {id} was answered:\n{log}"
    );
}
