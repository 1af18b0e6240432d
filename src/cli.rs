//! Command-line flags: a small hand-written parser (no `clap`), one table of
//! flags that both the parser and `--help` read, so they cannot drift apart.

use crate::api::AccessPolicy;
use crate::limits::{Limits, MAX_JOB_DELAY};
use std::fmt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The course subset, put in place by `make data`.
pub const DEFAULT_DATA: &str = "data/nutrition_activity_obesity_usa_subset.csv";
/// The full CDC dataset, which `make data` downloads when the subset is not
/// available; the default `--data` falls back to it.
pub const FALLBACK_DATA: &str = "data/nutrition_activity_obesity_usa_cdc_full.csv";
/// Environment variable the course uses for the worker count.
pub const THREADS_ENV: &str = "TP_NUM_OF_THREADS";

/// Everything the binary was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub data: PathBuf,
    pub threads: usize,
    pub results_dir: PathBuf,
    pub log_file: PathBuf,
    /// The access log: one Combined Log Format line per request.
    pub access_log: PathBuf,
    /// Load the data, print what was found, exit.
    pub summary_only: bool,
    /// Flush each result to stable storage before its job is `done`
    /// (`--no-fsync` clears it).
    pub durable: bool,
    /// How long every job sleeps on its worker before it computes
    /// (`--job-delay`; zero: no sleep at all).
    pub job_delay: Duration,
    pub limits: Limits,
    /// `--allowed-host`, `--allowed-origin`, `--allow-remote-shutdown`.
    pub access: AccessPolicy,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run(Box<Config>),
    /// `--help`: print [`help`] and exit 0.
    Help,
}

/// A command line that cannot be obeyed; printed with a pointer to `--help`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (see --help)", self.0)
    }
}

impl std::error::Error for UsageError {}

/// One flag: its name, the name of its value (`None` for a switch), and help.
struct Flag {
    name: &'static str,
    value: Option<&'static str>,
    help: &'static str,
}

const FLAGS: &[Flag] = &[
    Flag {
        name: "--host",
        value: Some("HOST"),
        help: "address to listen on [default: 127.0.0.1]",
    },
    Flag {
        name: "--port",
        value: Some("PORT"),
        help: "port to listen on; 0 picks a free port [default: 5000]",
    },
    Flag {
        name: "--data",
        value: Some("PATH"),
        help: "CDC-layout CSV to load [default: data/nutrition_activity_obesity_usa_subset.csv, \
               else data/nutrition_activity_obesity_usa_cdc_full.csv]",
    },
    Flag {
        name: "--threads",
        value: Some("N"),
        help: "worker threads [default: $TP_NUM_OF_THREADS, else the number of CPUs]",
    },
    Flag {
        name: "--results-dir",
        value: Some("DIR"),
        help: "where job results are written, one file per job [default: results]",
    },
    Flag {
        name: "--log-file",
        value: Some("PATH"),
        help: "server log (start-up, shutdown, job events, errors), rotated by size [default: webserver.log]",
    },
    Flag {
        name: "--access-log",
        value: Some("PATH"),
        help: "access log, one Combined Log Format line per request, rotated by size [default: access.log]",
    },
    Flag {
        name: "--max-connections",
        value: Some("N"),
        help: "simultaneous connections, lowered to what the open-file limit allows; \
               more are answered 503 [default: 2048]",
    },
    Flag {
        name: "--head-timeout-ms",
        value: Some("MS"),
        help: "a request head must arrive within this time [default: 10000]",
    },
    Flag {
        name: "--body-timeout-ms",
        value: Some("MS"),
        help: "a request body must arrive within this time [default: 10000]",
    },
    Flag {
        name: "--idle-timeout-ms",
        value: Some("MS"),
        help: "idle keep-alive connections are closed after this time [default: 5000]",
    },
    Flag {
        name: "--allowed-host",
        value: Some("NAME"),
        help: "also answer requests whose Host is NAME, with any port (repeatable); names \
               other than IP addresses and localhost get 421 [default: none]",
    },
    Flag {
        name: "--allowed-origin",
        value: Some("ORIGIN"),
        help: "let web pages from ORIGIN (e.g. http://localhost:3000) submit jobs and shut \
               the server down (repeatable); other sites' pages get 403 [default: none]",
    },
    Flag {
        name: "--allow-remote-shutdown",
        value: None,
        help: "answer graceful_shutdown from any client, not only from this machine",
    },
    Flag {
        name: "--job-delay",
        value: Some("MS"),
        help: "every job sleeps this long on its worker before it computes, to watch the pool \
               work on /status (0 to 60000) [default: 0]",
    },
    Flag {
        name: "--no-fsync",
        value: None,
        help: "do not flush results to stable storage (faster; results then survive a crash \
               of the server but not a power loss)",
    },
    Flag {
        name: "--summary",
        value: None,
        help: "load the data, print what was found, and exit",
    },
    Flag {
        name: "--help",
        value: None,
        help: "print this help and exit",
    },
];

/// The text `--help` prints.
#[must_use]
pub fn help() -> String {
    let mut out = String::from(
        "le-stats-sportif: a job-queue statistics server over the CDC BRFSS\n\
         \"Nutrition, Physical Activity, and Obesity\" survey.\n\n\
         Usage: le-stats-sportif [OPTIONS]\n\nOptions:\n",
    );
    for flag in FLAGS {
        let left = match flag.value {
            Some(value) => format!("{} {}", flag.name, value),
            None => flag.name.to_string(),
        };
        let _ = writeln!(out, "  {left:<24} {}", flag.help);
    }
    out.push_str(
        "\nOnce serving, it prints one line `listening on http://HOST:PORT` to stdout.\n\
         Ctrl-C or SIGTERM: stop accepting jobs, finish the queued ones, exit 0;\n\
         a second one exits at once with status 130.\n",
    );
    out
}

/// Parses the arguments after the program name. `env_threads` is the value
/// of [`THREADS_ENV`] and `cpus` the CPU count; `data_exists` says whether a
/// path exists (for the `--data` fallback). They are parameters so that this
/// function is pure and testable.
///
/// # Errors
/// An unknown flag, a missing or malformed value, or zero threads.
pub fn parse<I, S>(
    args: I,
    env_threads: Option<&str>,
    cpus: usize,
    data_exists: &dyn Fn(&Path) -> bool,
) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut given = Given::new();
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let (flag, value) = read_flag(&arg, &mut args)?;
        if flag.name == "--help" {
            return Ok(Command::Help);
        }
        given.apply(flag, value)?;
    }
    let config = given.finish(env_threads, cpus, data_exists)?;
    Ok(Command::Run(Box::new(config)))
}

/// The flag `arg` names and its value (`""` for a switch); a value not
/// given inline (`--flag=value`) is taken from `rest` (`--flag value`).
fn read_flag(
    arg: &str,
    rest: &mut impl Iterator<Item = String>,
) -> Result<(&'static Flag, String), UsageError> {
    let (name, inline_value) = match arg.split_once('=') {
        Some((name, value)) if name.starts_with("--") => (name, Some(value.to_owned())),
        _ => (arg, None),
    };
    let flag = FLAGS
        .iter()
        .find(|flag| flag.name == name)
        .ok_or_else(|| UsageError(format!("unknown argument {arg:?}")))?;
    let value = match (flag.value, inline_value) {
        (None, None) => String::new(),
        (None, Some(_)) => return Err(UsageError(format!("{name} takes no value"))),
        (Some(_), Some(value)) => value,
        (Some(what), None) => rest
            .next()
            .ok_or_else(|| UsageError(format!("{name} needs a value {what}")))?,
    };
    Ok((flag, value))
}

/// The flags read so far: a [`Config`] of defaults and given values, except
/// for the two whose default depends on the environment.
struct Given {
    /// `data` and `threads` are placeholders until [`Given::finish`].
    config: Config,
    data: Option<PathBuf>,
    threads: Option<usize>,
}

impl Given {
    fn new() -> Given {
        Given {
            config: Config {
                host: "127.0.0.1".to_string(),
                port: 5000,
                data: PathBuf::new(),
                threads: 0,
                results_dir: PathBuf::from("results"),
                log_file: PathBuf::from("webserver.log"),
                access_log: PathBuf::from("access.log"),
                summary_only: false,
                durable: true,
                job_delay: Duration::ZERO,
                limits: Limits::default(),
                access: AccessPolicy::default(),
            },
            data: None,
            threads: None,
        }
    }

    /// Records `flag` (any but `--help`) with its `value`.
    fn apply(&mut self, flag: &Flag, value: String) -> Result<(), UsageError> {
        let name = flag.name;
        let config = &mut self.config;
        let limits = &mut config.limits;
        match name {
            "--summary" => config.summary_only = true,
            "--no-fsync" => config.durable = false,
            "--host" => config.host = value,
            "--port" => config.port = number(name, &value)?,
            "--data" => self.data = Some(PathBuf::from(value)),
            "--threads" => self.threads = Some(positive(name, &value)?),
            "--results-dir" => config.results_dir = PathBuf::from(value),
            "--log-file" => config.log_file = PathBuf::from(value),
            "--access-log" => config.access_log = PathBuf::from(value),
            "--max-connections" => limits.max_connections = positive(name, &value)?,
            "--head-timeout-ms" => limits.head_timeout = millis(name, &value)?,
            "--body-timeout-ms" => limits.body_timeout = millis(name, &value)?,
            "--idle-timeout-ms" => limits.idle_timeout = millis(name, &value)?,
            "--allowed-host" => config
                .access
                .allow_host(&value)
                .map_err(|why| UsageError(format!("{name}: {why}")))?,
            "--allowed-origin" => config
                .access
                .allow_origin(&value)
                .map_err(|why| UsageError(format!("{name}: {why}")))?,
            "--allow-remote-shutdown" => config.access.allow_remote_shutdown(),
            "--job-delay" => config.job_delay = job_delay(&value)?,
            other => unreachable!("flag {other} is in FLAGS but has no arm here"),
        }
        Ok(())
    }

    /// The config, with `--threads` defaulting to `env_threads`, else
    /// `cpus`, and `--data` to the subset, else the full dataset when only
    /// that exists.
    fn finish(
        self,
        env_threads: Option<&str>,
        cpus: usize,
        data_exists: &dyn Fn(&Path) -> bool,
    ) -> Result<Config, UsageError> {
        let threads = match self.threads {
            Some(n) => n,
            None => match env_threads {
                Some(text) => positive(THREADS_ENV, text)?,
                None => cpus.max(1),
            },
        };
        let data = self.data.unwrap_or_else(|| {
            let subset = PathBuf::from(DEFAULT_DATA);
            let full = PathBuf::from(FALLBACK_DATA);
            if !data_exists(&subset) && data_exists(&full) {
                full
            } else {
                subset
            }
        });
        Ok(Config {
            data,
            threads,
            ..self.config
        })
    }
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, UsageError> {
    // `str::parse` accepts a leading `+`; a flag value should be plain digits.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UsageError(format!(
            "{name} needs a whole number, got {value:?}"
        )));
    }
    value
        .parse()
        .map_err(|_| UsageError(format!("{name}: {value:?} is out of range")))
}

fn positive(name: &str, value: &str) -> Result<usize, UsageError> {
    match number::<usize>(name, value)? {
        0 => Err(UsageError(format!("{name} must be at least 1"))),
        n => Ok(n),
    }
}

/// The longest timeout a flag may set (a day): deadlines are computed as
/// `Instant::now() + timeout`, which must not overflow.
const MAX_TIMEOUT_MS: usize = 24 * 60 * 60 * 1000;

fn millis(name: &str, value: &str) -> Result<Duration, UsageError> {
    match positive(name, value)? {
        ms if ms > MAX_TIMEOUT_MS => Err(UsageError(format!(
            "{name} must be at most {MAX_TIMEOUT_MS} (a day)"
        ))),
        ms => Ok(Duration::from_millis(ms as u64)),
    }
}

/// `--job-delay`'s value: whole milliseconds from 0 to [`MAX_JOB_DELAY`].
fn job_delay(value: &str) -> Result<Duration, UsageError> {
    let max = MAX_JOB_DELAY.as_millis();
    match number::<u64>("--job-delay", value)? {
        ms if u128::from(ms) > max => Err(UsageError(format!(
            "--job-delay must be at most {max} (a minute)"
        ))),
        ms => Ok(Duration::from_millis(ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_delay_is_0_to_60000_ms() {
        assert_eq!(config(&[], None).job_delay, Duration::ZERO);
        assert_eq!(
            config(&["--job-delay", "300"], None).job_delay,
            Duration::from_millis(300)
        );
        assert_eq!(
            config(&["--job-delay=60000"], None).job_delay,
            Duration::from_secs(60)
        );
        assert_eq!(
            config(&["--job-delay", "0"], None).job_delay,
            Duration::ZERO
        );
        for bad in ["60001", "-1", "1.5", "", "+3"] {
            assert!(run(&["--job-delay", bad], None).is_err(), "{bad}");
        }
        assert!(help().contains("to watch the pool"));
    }

    fn run(args: &[&str], env: Option<&str>) -> Result<Command, UsageError> {
        parse(args.iter().copied(), env, 4, &|_| true)
    }

    fn config(args: &[&str], env: Option<&str>) -> Config {
        match run(args, env) {
            Ok(Command::Run(config)) => *config,
            other => panic!("expected a config, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = config(&[], None);
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.port, 5000);
        assert_eq!(c.data, PathBuf::from(DEFAULT_DATA));
        assert_eq!(c.threads, 4);
        assert_eq!(c.results_dir, PathBuf::from("results"));
        assert_eq!(c.log_file, PathBuf::from("webserver.log"));
        assert_eq!(c.access_log, PathBuf::from("access.log"));
        assert!(!c.summary_only);
        assert!(c.durable);
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.access, AccessPolicy::default());
    }

    #[test]
    fn access_flags_repeat_and_are_checked() {
        let c = config(
            &[
                "--allowed-host",
                "stats.example",
                "--allowed-host=box.lan",
                "--allowed-origin",
                "http://localhost:3000",
                "--allow-remote-shutdown",
            ],
            None,
        );
        let mut expected = AccessPolicy::default();
        expected.allow_host("stats.example").unwrap();
        expected.allow_host("box.lan").unwrap();
        expected.allow_origin("http://localhost:3000").unwrap();
        expected.allow_remote_shutdown();
        assert_eq!(c.access, expected);
        for args in [
            &["--allowed-host", "http://stats.example"][..],
            &["--allowed-host", "stats.example:5000"],
            &["--allowed-origin", "localhost:3000"],
            &["--allowed-origin", "http://localhost:3000/app"],
            &["--allow-remote-shutdown=yes"],
        ] {
            assert!(run(args, None).is_err(), "{args:?} should be rejected");
        }
    }

    #[test]
    fn flags_override_and_both_spellings_work() {
        let c = config(
            &["--port=0", "--threads", "3", "--data", "x.csv", "--summary"],
            Some("7"),
        );
        assert_eq!(c.port, 0);
        assert_eq!(c.threads, 3);
        assert_eq!(c.data, PathBuf::from("x.csv"));
        assert!(c.summary_only);
        assert!(!config(&["--no-fsync"], None).durable);
        assert!(run(&["--no-fsync=yes"], None).is_err());
        let c = config(&["--idle-timeout-ms", "250"], None);
        assert_eq!(c.limits.idle_timeout, Duration::from_millis(250));
        let c = config(&["--access-log", "a.log", "--log-file=s.log"], None);
        assert_eq!(c.access_log, PathBuf::from("a.log"));
        assert_eq!(c.log_file, PathBuf::from("s.log"));
    }

    #[test]
    fn env_threads_is_used_when_no_flag() {
        assert_eq!(config(&[], Some("7")).threads, 7);
        assert!(run(&[], Some("0")).is_err());
        assert!(run(&[], Some("many")).is_err());
    }

    #[test]
    fn data_falls_back_to_the_full_download() {
        let only_full = |p: &Path| p == Path::new(FALLBACK_DATA);
        match parse(Vec::<String>::new(), None, 1, &only_full) {
            Ok(Command::Run(c)) => assert_eq!(c.data, PathBuf::from(FALLBACK_DATA)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_command_lines_are_errors() {
        for args in [
            &["--bogus"][..],
            &["--port"],
            &["--port", "70000"],
            &["--port", "+5"],
            &["--threads", "0"],
            &["--summary=yes"],
            &["--idle-timeout-ms", "18446744073709551615"],
            &["--head-timeout-ms", "86400001"],
            &["positional"],
        ] {
            assert!(run(args, None).is_err(), "{args:?} should be rejected");
        }
        assert_eq!(run(&["--help"], None), Ok(Command::Help));
    }

    #[test]
    fn help_lists_every_flag() {
        let text = help();
        for flag in FLAGS {
            assert!(
                text.contains(flag.name),
                "{} missing from --help",
                flag.name
            );
        }
    }
}
