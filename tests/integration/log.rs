//! The logs: line formats, flush, every clone's lines reach the file, size
//! rotation, carrying on when the file cannot be written, never blocking on
//! a stalled sink, and a job's lines in causal order.

use crate::common;

use common::{poll, ServerProcess, TempDir};
use le_stats_sportif::http::RequestRecord;
use le_stats_sportif::jobs::Jobs;
use le_stats_sportif::limits::{LOG_FLUSH_TIMEOUT, LOG_QUEUE_LINES};
use le_stats_sportif::log::Logger;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `2026-11-27T20:54:39.123Z`: digits and separators in the right places.
fn is_timestamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 24
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'.',
            23 => b == b'Z',
            _ => b.is_ascii_digit(),
        })
}

#[test]
fn line_format() {
    let dir = TempDir::new("format");
    let path = dir.path().join("webserver.log");
    let logger = Logger::open(&path, 1 << 20, 3).unwrap();
    logger.warn("log: 3 lines dropped");
    logger.info("job_id_7 done in 0.400ms");
    logger.error("job_id_8 error: boom\nsecond line");
    logger.flush();
    let got = lines(&path);
    assert_eq!(got.len(), 3, "{got:?}");
    let rest: Vec<&str> = got
        .iter()
        .map(|line| {
            let (stamp, rest) = line.split_at(24);
            assert!(is_timestamp(stamp), "{line}");
            rest
        })
        .collect();
    assert_eq!(
        rest,
        [
            " WARN log: 3 lines dropped",
            " INFO job_id_7 done in 0.400ms",
            " ERROR job_id_8 error: boom\\nsecond line",
        ]
    );
}

#[test]
fn flush_makes_lines_visible_without_dropping() {
    let dir = TempDir::new("flush");
    let path = dir.path().join("log");
    let logger = Logger::open(&path, 1 << 20, 3).unwrap();
    for i in 0..500 {
        logger.info(format!("line {i}"));
        if i % 100 == 99 {
            logger.flush();
            assert_eq!(lines(&path).len(), i + 1);
        }
    }
}

#[test]
fn every_clone_writes_and_the_last_drop_waits_for_the_writer() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 1000;
    let dir = TempDir::new("clones");
    let path = dir.path().join("log");
    let logger = Logger::open(&path, 1 << 30, 3).unwrap();
    thread::scope(|scope| {
        for t in 0..THREADS {
            let logger = logger.clone();
            scope.spawn(move || {
                for i in 0..PER_THREAD {
                    logger.info(format!("t{t} {i}"));
                }
            });
        }
    });
    // No flush: dropping the last clone must drain and write everything.
    drop(logger);
    let got = lines(&path);
    assert_eq!(got.len(), THREADS * PER_THREAD);
    // Each thread's lines appear in the order it logged them.
    for t in 0..THREADS {
        let prefix = format!(" INFO t{t} ");
        let mine: Vec<usize> = got
            .iter()
            .filter_map(|line| line[24..].strip_prefix(&prefix))
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(mine, (0..PER_THREAD).collect::<Vec<_>>());
    }
}

/// A message that makes an `INFO` line exactly 100 bytes long:
/// 24 (time) + 1 + 4 (`INFO`) + 1 + 69 + 1 (newline).
fn hundred_byte_message(i: usize) -> String {
    let message = format!("message {i:02} ");
    format!("{message:.<69}")
}

/// The numbers of the [`hundred_byte_message`] lines in `text`, in order.
fn message_numbers(text: &str) -> Vec<usize> {
    text.lines()
        .map(|line| {
            assert_eq!(line.len() + 1, 100, "{line}");
            line[38..40].parse().unwrap()
        })
        .collect()
}

/// The numbers of the [`hundred_byte_message`] lines in the file at `path`.
fn numbers(path: &Path) -> Vec<usize> {
    message_numbers(&fs::read_to_string(path).unwrap_or_default())
}

/// Logs messages `numbers` to `path` through a logger of its own (rotating
/// at 250 bytes, keeping `keep` old files), and flushes.
fn log_messages(path: &Path, keep: usize, numbers: std::ops::RangeInclusive<usize>) {
    let logger = Logger::open(path, 250, keep).unwrap();
    for i in numbers {
        logger.info(hundred_byte_message(i));
    }
    logger.flush();
}

#[test]
fn rotation_keeps_the_newest_files() {
    let dir = TempDir::new("rotate");
    let path = dir.path().join("webserver.log");
    // Two 100-byte lines fit in 250 bytes, a third would not.
    let logger = Logger::open(&path, 250, 2).unwrap();
    for i in 1..=10 {
        logger.info(hundred_byte_message(i));
    }
    logger.flush();
    assert_eq!(numbers(&path), [9, 10]);
    assert_eq!(numbers(&dir.path().join("webserver.log.1")), [7, 8]);
    assert_eq!(numbers(&dir.path().join("webserver.log.2")), [5, 6]);
    assert!(!dir.path().join("webserver.log.3").exists());
}

#[test]
fn rotation_counts_what_the_file_already_holds() {
    let dir = TempDir::new("append");
    let path = dir.path().join("log");
    fs::write(&path, "x".repeat(199) + "\n").unwrap();
    let logger = Logger::open(&path, 250, 1).unwrap();
    // 200 + 100 > 250: the earlier content is rotated away first.
    logger.info(hundred_byte_message(1));
    logger.flush();
    assert_eq!(lines(&path).len(), 1);
    assert_eq!(lines(&dir.path().join("log.1")), ["x".repeat(199)]);
}

/// A log that is not a regular file (here a FIFO; in use, `/dev/null` or
/// a terminal) takes every line and is never renamed: a rotation would
/// move the FIFO to `log.1` and put a plain file in its place — and, for
/// a server run as root with `--access-log /dev/null`, replace the
/// machine's `/dev/null`. Fails without `Writer::rotates`.
#[test]
fn a_log_that_is_not_a_regular_file_is_never_rotated() {
    use std::os::unix::fs::FileTypeExt;
    let dir = TempDir::new("fifo-log");
    let path = dir.path().join("log");
    // Read and write: opening does not wait for the logger, and the
    // logger's own open does not wait for a reader.
    let mut fifo = common::stalled_fifo(&path);
    let (sent, got) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = vec![0; 1000];
        let read = fifo.read_exact(&mut bytes).map(|()| bytes);
        sent.send(read).ok();
    });
    // Ten 100-byte lines against 250 bytes: a regular file rotates 4 times.
    // Five with `keep` 2 (rotation renames), five with `keep` 0 (it deletes).
    log_messages(&path, 2, 1..=5);
    log_messages(&path, 0, 6..=10);
    let bytes = got
        .recv_timeout(Duration::from_secs(30))
        .expect("the ten lines reach the FIFO within 30 s")
        .expect("read the FIFO");
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(message_numbers(&text), (1..=10).collect::<Vec<_>>());
    assert!(fs::metadata(&path).unwrap().file_type().is_fifo());
    assert!(!dir.path().join("log.1").exists());
}

/// A log reached through a symlink (`--access-log /dev/stdout`, a
/// symlink in `/dev`, with stdout sent to a file) is written through it
/// and never rotated: `rename` would move the symlink itself and leave a
/// plain file in its place, and with `keep` 0 delete it.
#[test]
fn a_log_reached_through_a_symlink_is_never_rotated() {
    let dir = TempDir::new("symlink-log");
    let real = dir.path().join("real.log");
    let link = dir.path().join("link.log");
    fs::write(&real, "").unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    log_messages(&link, 2, 1..=5);
    log_messages(&link, 0, 6..=10);
    assert_eq!(numbers(&real), (1..=10).collect::<Vec<_>>());
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!dir.path().join("link.log.1").exists());
    assert!(!dir.path().join("real.log.1").exists());
}

/// A log whose path is replaced by a symlink (to another file) while it
/// is written: at the next rotation the writer sees that `path` no longer
/// names its file and reopens it, through the symlink, renaming nothing;
/// the lines go on into the symlink's target. Fails if the writer keeps
/// writing to the file it had open.
#[test]
fn a_log_replaced_by_a_symlink_is_reopened_through_it() {
    let dir = TempDir::new("replaced-log");
    let path = dir.path().join("log");
    let target = dir.path().join("target.log");
    let logger = Logger::open(&path, 250, 2).unwrap();
    logger.info(hundred_byte_message(1));
    logger.info(hundred_byte_message(2));
    logger.flush();
    fs::rename(&path, dir.path().join("moved.log")).unwrap();
    fs::write(&target, "").unwrap();
    std::os::unix::fs::symlink(&target, &path).unwrap();
    for i in 3..=6 {
        logger.info(hundred_byte_message(i));
    }
    logger.flush();
    // Line 3 would overflow 250 bytes: the rotation finds the symlink.
    assert_eq!(numbers(&dir.path().join("moved.log")), [1, 2]);
    assert_eq!(numbers(&target), [3, 4, 5, 6]);
    assert!(fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!dir.path().join("log.1").exists());
}

/// A rotation that fails (`log.1` is a non-empty directory, so the rename
/// onto it fails) loses no line and is tried again only after another
/// `max_bytes`, not on every line; once the obstacle is gone, the log
/// rotates again.
#[test]
fn a_failed_rotation_is_retried_after_another_max_bytes() {
    let dir = TempDir::new("failed-rotation");
    let path = dir.path().join("log");
    let blocker = dir.path().join("log.1");
    fs::create_dir_all(blocker.join("inside")).unwrap();
    // keep 1: the rotation is the one rename `log` -> `log.1`.
    let logger = Logger::open(&path, 250, 1).unwrap();
    for i in 1..=5 {
        logger.info(hundred_byte_message(i));
    }
    logger.flush();
    // Every line is there: the try before line 3 failed and the file went
    // on growing; the next try waited for 250 more bytes (before line 5:
    // failed too), so the one after that is due before line 7, not 6.
    assert_eq!(lines(&path).len(), 5);
    fs::remove_dir_all(&blocker).unwrap();
    for i in 6..=9 {
        logger.info(hundred_byte_message(i));
    }
    logger.flush();
    // Rotated before line 7 (lines 1–6 to `log.1`), then, at 250 bytes
    // again, before line 9 (lines 7–8 over them, `keep` being 1). Retried
    // on every line, it would have rotated before line 6 and line 8.
    assert_eq!(numbers(&blocker), [7, 8]);
    assert_eq!(numbers(&path), [9]);
}

#[test]
fn keep_zero_starts_over() {
    let dir = TempDir::new("keep0");
    let path = dir.path().join("log");
    let logger = Logger::open(&path, 250, 0).unwrap();
    for i in 1..=5 {
        logger.info(hundred_byte_message(i));
    }
    logger.flush();
    assert_eq!(lines(&path).len(), 1);
    assert!(!dir.path().join("log.1").exists());
}

#[test]
fn a_line_longer_than_the_limit_is_still_written() {
    let dir = TempDir::new("long");
    let path = dir.path().join("log");
    let logger = Logger::open(&path, 50, 1).unwrap();
    logger.info("y".repeat(300));
    logger.info("z".repeat(300));
    logger.flush();
    assert_eq!(lines(&path).len(), 1);
    assert!(lines(&path)[0].ends_with(&"z".repeat(300)));
    assert!(lines(&dir.path().join("log.1"))[0].ends_with(&"y".repeat(300)));
}

#[test]
fn an_unwritable_log_neither_panics_nor_blocks_and_recovers() {
    let dir = TempDir::new("broken");
    let logs = dir.path().join("logs");
    fs::create_dir_all(&logs).unwrap();
    let path = logs.join("log");
    let logger = Logger::open(&path, 150, 2).unwrap();
    logger.info(hundred_byte_message(1));
    logger.flush();
    // Pull the directory away: the next rotation finds the log gone, and
    // cannot reopen it.
    fs::remove_dir_all(&logs).unwrap();
    for i in 2..=5 {
        logger.info(hundred_byte_message(i));
    }
    // The flush returns: the writer keeps draining its queue.
    logger.flush();
    // Once the directory is back, logging resumes by itself.
    fs::create_dir_all(&logs).unwrap();
    logger.info("back");
    logger.flush();
    let got = lines(&path);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].ends_with(" INFO back"));
}

#[test]
fn open_fails_when_the_file_cannot_be_created() {
    let dir = TempDir::new("nodir");
    assert!(Logger::open(&dir.path().join("missing/log"), 100, 1).is_err());
}

#[test]
fn a_disabled_logger_accepts_everything() {
    let logger = Logger::disabled();
    let clone = logger.clone();
    logger.access(&RequestRecord::unparsed(None, 400, 0, Duration::ZERO));
    clone.info("nothing");
    clone.error("nothing");
    assert!(logger.flush());
    assert_eq!((logger.dropped_lines(), logger.queue_depth()), (0, 0));
}

#[test]
fn access_log_lines_are_combined_log_format_plus_seconds() {
    let dir = TempDir::new("access");
    let path = dir.path().join("access.log");
    let server_log = Logger::disabled();
    let logger = Logger::open_access(&path, 1 << 20, 1, server_log).unwrap();
    logger.access(&RequestRecord {
        peer: Some("127.0.0.1".parse().unwrap()),
        method: "POST",
        path: "/api/states_mean",
        target: "/api/states_mean?x=1",
        version: "HTTP/1.1",
        status: 200,
        body_bytes: 22,
        referer: None,
        user_agent: Some(b"curl/8.5.0"),
        duration: Duration::from_millis(245),
    });
    logger.access(&RequestRecord::unparsed(None, 400, 55, Duration::ZERO));
    assert!(logger.flush());
    let got = lines(&path);
    assert_eq!(got.len(), 2, "{got:?}");
    // `127.0.0.1 - - [28/Nov/2026:03:12:45 +0000] "POST …`: the time is
    // the request's, so only its shape is checked here (the exact format
    // is a unit test in src/log/format.rs).
    let (head, rest) = got[0].split_once(" [").unwrap();
    let (time, rest) = rest.split_once("] ").unwrap();
    assert_eq!(head, "127.0.0.1 - -");
    assert_eq!(time.len(), "28/Nov/2026:03:12:45 +0000".len(), "{time}");
    assert!(time.ends_with(" +0000"), "{time}");
    assert_eq!(
        rest,
        r#""POST /api/states_mean?x=1 HTTP/1.1" 200 22 "-" "curl/8.5.0" 0.245"#
    );
    assert!(got[1].starts_with("- - - ["), "{}", got[1]);
    assert!(
        got[1].ends_with(r#"] "-" 400 55 "-" "-" 0.000"#),
        "{}",
        got[1]
    );
}

/// Logs `n` lines on another thread; panics if that does not finish within
/// a (generous) deadline, which is what a logger blocked on its sink does.
fn flood(logger: &Logger, n: usize) {
    let (done, finished) = mpsc::channel();
    let logger = logger.clone();
    thread::spawn(move || {
        for i in 0..n {
            logger.info(format!("flood {i}"));
        }
        // Before reporting: the caller's drop must be the last one.
        drop(logger);
        let _ = done.send(());
    });
    finished
        .recv_timeout(Duration::from_secs(60))
        .expect("logging blocked on a stalled sink");
}

#[test]
fn a_stalled_sink_drops_and_counts_and_the_count_is_logged_when_writing_resumes() {
    let dir = TempDir::new("stall");
    let path = dir.path().join("webserver.log");
    let mut fifo = common::stalled_fifo(&path);
    let logger = Logger::open(&path, 1 << 30, 1).unwrap();
    // Far more than the queue and the pipe hold together.
    flood(&logger, 4 * LOG_QUEUE_LINES);
    let dropped = logger.dropped_lines();
    assert!(dropped >= LOG_QUEUE_LINES as u64, "{dropped} dropped");
    // The writer is stuck in `write` on an older batch: the queue stays full.
    assert_eq!(logger.queue_depth(), LOG_QUEUE_LINES);
    let start = Instant::now();
    assert!(!logger.flush(), "a stalled sink cannot be flushed");
    assert!(start.elapsed() >= LOG_FLUSH_TIMEOUT);

    // The reader comes back: writing resumes, and its first line is the
    // number of lines dropped meanwhile.
    let (text_tx, text_rx) = mpsc::channel();
    thread::spawn(move || {
        let mut text = Vec::new();
        let mut chunk = [0u8; 64 * 1024];
        while !text.ends_with(b" INFO the end\n") {
            match fifo.read(&mut chunk) {
                Ok(n) if n > 0 => text.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        let _ = text_tx.send(String::from_utf8_lossy(&text).into_owned());
    });
    poll(Duration::from_secs(30), || {
        (logger.queue_depth() < LOG_QUEUE_LINES).then_some(())
    });
    logger.info("the end");
    assert_eq!(
        logger.dropped_lines(),
        dropped,
        "nothing dropped once drained"
    );
    assert!(logger.flush());
    let text = text_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the FIFO reader saw the last line");
    // Usually one notice; more if the writer, slowed by a loaded machine,
    // resumed between drops before the pipe filled. Together they count
    // every dropped line, and the last one says the total.
    let suffix = format!(
        " lines dropped for {} (the log could not keep up; ",
        path.display()
    );
    let notices: Vec<(usize, u64, u64)> = text
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let rest = line.get(24..)?.strip_prefix(" WARN log: ")?;
            let (n, rest) = rest.split_once(&suffix)?;
            let total = rest.strip_suffix(" in all)")?;
            Some((i, n.parse().ok()?, total.parse().ok()?))
        })
        .collect();
    assert!(!notices.is_empty(), "no drop notice");
    assert_eq!(notices.iter().map(|&(_, n, _)| n).sum::<u64>(), dropped);
    assert_eq!(notices.last().map(|&(_, _, total)| total), Some(dropped));
    let written = text.lines().filter(|l| l.contains(" INFO flood ")).count();
    assert_eq!(written as u64 + dropped, 4 * LOG_QUEUE_LINES as u64);
    // A notice is written when writing resumes, after the lines that were
    // in the writer's hands when it stalled: the first flood lines, in
    // order (none, when the queue filled before the writer took a batch).
    for (i, line) in text.lines().take(notices[0].0).enumerate() {
        assert!(
            line.ends_with(&format!(" INFO flood {i}")),
            "line {i}: {line}"
        );
    }
}

#[test]
fn the_last_drop_gives_up_on_a_stalled_writer_at_the_deadline() {
    let dir = TempDir::new("stall-drop");
    let path = dir.path().join("log");
    let fifo = common::stalled_fifo(&path);
    let logger = Logger::open(&path, 1 << 30, 1).unwrap();
    flood(&logger, 2 * LOG_QUEUE_LINES);
    let (done, dropped) = mpsc::channel();
    let start = Instant::now();
    thread::spawn(move || {
        drop(logger);
        let _ = done.send(());
    });
    dropped
        .recv_timeout(LOG_FLUSH_TIMEOUT + Duration::from_secs(30))
        .expect("the last drop waited for a stalled writer");
    assert!(start.elapsed() >= LOG_FLUSH_TIMEOUT);
    // Let the detached writer finish: with the FIFO gone and no reader,
    // its writes fail and it drains the queue into a plain file.
    fs::remove_file(&path).unwrap();
    drop(fifo);
}

#[test]
fn a_jobs_submitted_line_always_precedes_its_done_line() {
    const SUBMITTERS: usize = 8;
    const PER_SUBMITTER: usize = 250;
    let dir = TempDir::new("causal");
    let path = dir.path().join("webserver.log");
    let logger = Logger::open(&path, 1 << 30, 1).unwrap();
    let jobs = Jobs::open(&dir.path().join("results"), 4, logger.clone()).unwrap();
    // Instant jobs on four workers while eight threads submit: a worker
    // often finishes a job before its submitter gets the id back.
    thread::scope(|scope| {
        for _ in 0..SUBMITTERS {
            scope.spawn(|| {
                for _ in 0..PER_SUBMITTER {
                    jobs.submit_as("states_mean", Box::new(|| Ok("[]".to_string())))
                        .unwrap();
                }
            });
        }
    });
    jobs.shut_down();
    assert!(logger.flush());
    let total = SUBMITTERS * PER_SUBMITTER;
    let mut submitted_at = vec![None; total + 1];
    let mut done = 0;
    for (i, line) in lines(&path).iter().enumerate() {
        let rest = &line[24..];
        let Some(rest) = rest.strip_prefix(" INFO job_id_") else {
            panic!("unexpected line {line}");
        };
        let (n, event) = rest.split_once(' ').unwrap();
        let n: usize = n.parse().unwrap();
        if event == "submitted: states_mean" {
            assert_eq!(submitted_at[n], None, "{line}");
            submitted_at[n] = Some(i);
        } else {
            assert!(event.starts_with("done in "), "{line}");
            assert!(
                submitted_at[n].is_some(),
                "job_id_{n} done before submitted"
            );
            done += 1;
        }
    }
    assert_eq!(done, total);
    assert_eq!(logger.dropped_lines(), 0);
}

/// The access line without its time stamp and duration (which vary):
/// `host - - "request" status bytes "referer" "agent"`.
fn without_time(line: &str) -> String {
    let (head, rest) = line.split_once(" [").expect("a time stamp");
    let (_, rest) = rest.split_once("] ").expect("a time stamp");
    let (rest, seconds) = rest.rsplit_once(' ').expect("a duration");
    assert!(seconds.parse::<f64>().is_ok(), "{line}");
    format!("{head} {rest}")
}

/// Stops `server` with SIGTERM (it flushes its logs, then exits 0) and
/// gives its access-log lines without their time stamps.
fn access_lines_at_exit(server: &mut ServerProcess) -> Vec<String> {
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(30)), Some(0));
    lines(&server.access_log)
        .iter()
        .map(|l| without_time(l))
        .collect()
}

#[test]
fn the_real_server_writes_one_access_line_per_request_and_flushes_it_at_exit() {
    let dir = TempDir::new("access-e2e");
    let mut server = ServerProcess::start(&common::fixture("survey.csv"), dir.path(), &[]);
    let requests: [(&[u8], u16); 5] = [
        (
            b"GET /api/num_jobs?x=1 HTTP/1.1\r\nHost: localhost\r\nReferer: http://r/\r\nUser-Agent: a\"b\\c\r\nConnection: close\r\n\r\n",
            200,
        ),
        (b"HEAD /api/num_jobs HTTP/1.0\r\n\r\n", 200),
        (b"NOT A REQUEST\r\n\r\n", 400),
        // A bad header after a good request line: logged with that line.
        (b"GET /m?q HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        (b"POST /api/states_mean HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nConnection: close\r\n\r\n{", 400),
    ];
    // The bytes logged are the body bytes the client received.
    let mut bytes = Vec::new();
    for (request, status) in requests {
        let reply = common::raw(server.addr, request);
        let text = String::from_utf8_lossy(&reply);
        assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
        let head_end = text.find("\r\n\r\n").expect("a whole head") + 4;
        bytes.push(reply.len() - head_end);
    }
    assert_eq!(bytes[1], 0, "HEAD");
    let got = access_lines_at_exit(&mut server);
    assert_eq!(
        got,
        [
            format!(
                r#"127.0.0.1 - - "GET /api/num_jobs?x=1 HTTP/1.1" 200 {} "http://r/" "a\"b\\c""#,
                bytes[0]
            ),
            r#"127.0.0.1 - - "HEAD /api/num_jobs HTTP/1.0" 200 0 "-" "-""#.to_string(),
            format!(r#"127.0.0.1 - - "-" 400 {} "-" "-""#, bytes[2]),
            format!(
                r#"127.0.0.1 - - "GET /m?q HTTP/1.1" 400 {} "-" "-""#,
                bytes[3]
            ),
            format!(
                r#"127.0.0.1 - - "POST /api/states_mean HTTP/1.1" 400 {} "-" "-""#,
                bytes[4]
            ),
        ]
    );
    let server_log = fs::read_to_string(&server.log_file).unwrap();
    assert!(!server_log.contains("num_jobs"), "{server_log}");
}

/// RFC 9110 §2.5 and §5.5 over a real socket: `HTTP/1.2` is answered as
/// HTTP/1.1 (not `505`), and a Latin-1 `User-Agent` (the byte `0xE9`, not
/// UTF-8) is served (not `400`) and written to the access log as `\xe9`,
/// as Apache and nginx write it. The request line is logged with the
/// version it was handled as.
#[test]
fn http_1_2_is_served_as_1_1_and_a_latin1_user_agent_is_logged_escaped() {
    let dir = TempDir::new("access-latin1");
    let mut server = ServerProcess::start(&common::fixture("survey.csv"), dir.path(), &[]);
    let reply = common::raw(
        server.addr,
        b"GET /api/num_jobs HTTP/1.2\r\nHost: localhost\r\nUser-Agent: Mozilla caf\xe9\r\nReferer: http://r/\xff\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n{\"num_jobs\": 0}\n"), "{text}");
    let got = access_lines_at_exit(&mut server);
    assert_eq!(
        got,
        [r#"127.0.0.1 - - "GET /api/num_jobs HTTP/1.1" 200 16 "http://r/\xff" "Mozilla caf\xe9""#]
    );
}
