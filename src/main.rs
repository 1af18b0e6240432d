//! The `le-stats-sportif` binary: flags → data → jobs → server, and the main
//! thread's one duty once serving: carry out shutdown when asked.
#![forbid(unsafe_code)]

use le_stats_sportif::api::Api;
use le_stats_sportif::cli::{self, Command, Config};
use le_stats_sportif::dataset::Dataset;
use le_stats_sportif::jobs::{Jobs, JobsOptions};
use le_stats_sportif::lifecycle::{ExitRequest, Lifecycle};
use le_stats_sportif::limits::{LOG_KEEP_FILES, LOG_MAX_BYTES, MAX_PENDING_JOBS};
use le_stats_sportif::log::Logger;
use le_stats_sportif::result_store::ResultsLock;
use le_stats_sportif::server::Server;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;

/// Exit status when a second Ctrl-C cuts the drain short (128 + SIGINT).
const FORCED_EXIT: i32 = 130;

fn main() -> ExitCode {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let env_threads = std::env::var(cli::THREADS_ENV).ok();
    let command = cli::parse(
        std::env::args().skip(1),
        env_threads.as_deref(),
        cpus,
        &|p: &Path| p.exists(),
    );
    match command {
        Ok(Command::Help) => {
            print!("{}", cli::help());
            ExitCode::SUCCESS
        }
        Ok(Command::Run(config)) => match run(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("le-stats-sportif: {message}");
                ExitCode::FAILURE
            }
        },
        Err(usage) => {
            eprintln!("le-stats-sportif: {usage}");
            ExitCode::from(2)
        }
    }
}

fn run(config: &Config) -> Result<(), String> {
    if config.summary_only {
        let dataset = Dataset::load(&config.data).map_err(|e| e.to_string())?;
        println!("{}", dataset.summary());
        return Ok(());
    }
    // The results directory's lock first: a second server on the same
    // directory stops here at once, before it loads the data, opens (and
    // writes to) the log or touches the directory.
    let lock = ResultsLock::acquire(&config.results_dir).map_err(|e| e.to_string())?;
    let dataset = Dataset::load(&config.data).map_err(|e| e.to_string())?;
    // stdout is kept for the one `listening` line that scripts parse.
    eprintln!("{}", dataset.summary());

    let logger = Logger::open(&config.log_file, LOG_MAX_BYTES, LOG_KEEP_FILES)
        .map_err(|e| format!("cannot open log file {}: {e}", config.log_file.display()))?;
    let options = JobsOptions {
        threads: config.threads,
        max_pending: MAX_PENDING_JOBS,
        durable: config.durable,
    };
    let jobs = Jobs::open_locked(lock, options, logger.clone()).map_err(|e| {
        format!(
            "cannot use results directory {}: {e}",
            config.results_dir.display()
        )
    })?;
    let jobs = Arc::new(jobs);
    let lifecycle = Arc::new(Lifecycle::new());

    {
        let jobs = Arc::clone(&jobs);
        let lifecycle = Arc::clone(&lifecycle);
        ctrlc::set_handler(move || {
            // Stop accepting at once, so nothing is accepted that the exit
            // would not wait for; the main thread does the waiting.
            jobs.stop_accepting();
            if lifecycle.request_exit() == ExitRequest::Repeated {
                eprintln!("le-stats-sportif: second interrupt, exiting without draining");
                std::process::exit(FORCED_EXIT);
            }
        })
        .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    }

    let server = Server::bind(&config.host, config.port)
        .map_err(|e| format!("cannot listen on {}:{}: {e}", config.host, config.port))?;
    let address = server
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let api = Arc::new(Api::new(
        Arc::new(dataset),
        Arc::clone(&jobs),
        Arc::clone(&lifecycle),
        logger.clone(),
    ));
    {
        let limits = config.limits;
        let logger = logger.clone();
        thread::Builder::new()
            .name("accept".into())
            .spawn(move || server.run(api, limits, logger))
            .map_err(|e| format!("cannot start the accept thread: {e}"))?;
    }
    logger.info(format!(
        "listening on http://{address} with {} worker threads",
        config.threads
    ));
    // Scripts and tests wait for exactly this line.
    println!("listening on http://{address}");
    let _ = std::io::stdout().flush();

    // The main thread's duty from here on: carry out shutdown when asked.
    lifecycle.wait_for_drain_request();
    logger.info("shutdown requested: draining the job queue");
    jobs.join();
    logger.info("every accepted job has finished; workers stopped");
    lifecycle.wait_for_exit_request();
    logger.info("exiting");
    logger.flush();
    // Connection threads are detached: exiting the process ends them.
    std::process::exit(0);
}
