//! The log: line format, flush, every clone's lines reach the file, size
//! rotation, and carrying on when the file cannot be written.

mod common;

use common::TempDir;
use le_stats_sportif::log::Logger;
use std::fs;
use std::path::Path;
use std::thread;
use std::time::Duration;

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
    logger.request("GET", "/api/num_jobs", 200, Duration::from_micros(123));
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
            " INFO GET /api/num_jobs 200 0.123ms",
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
    let numbers = |p: &Path| -> Vec<usize> {
        lines(p)
            .iter()
            .map(|line| {
                assert_eq!(line.len() + 1, 100, "{line}");
                line[38..40].parse().unwrap()
            })
            .collect()
    };
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
    // Pull the directory away: the next rotation cannot rename or reopen.
    fs::remove_dir_all(&logs).unwrap();
    for i in 2..=5 {
        logger.info(hundred_byte_message(i));
    }
    logger.flush(); // returns: the writer keeps draining its channel
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
    logger.request("GET", "/", 200, Duration::ZERO);
    clone.info("nothing");
    clone.error("nothing");
    logger.flush();
}
