//! bare_server — the design's own ceiling for a GET: a std-only
//! thread-per-connection HTTP/1.1 server that answers every request on a
//! keep-alive connection with the same bytes.
//!
//!     bare_server RESPONSE_FILE
//!
//! RESPONSE_FILE holds a whole response (status line, headers, body), e.g.
//! the bytes le-stats-sportif sends for an idle `GET /api/num_jobs`
//! (scripts/bench.sh captures them). It binds 127.0.0.1 on a free port and
//! prints `listening on http://127.0.0.1:PORT`, like the real server, then
//! serves until killed.
//!
//! Per request it does what any server of this design must do and nothing
//! else: one blocking read that ends a request head (`\r\n\r\n`; requests
//! carry no body) and one write of the answer. No parsing, routing, logging
//! or metrics, so le-stats-sportif's GET rate divided by this one's is the
//! share of the design's ceiling that our own per-request work leaves.
//! Built by scripts/bench.sh with `rustc -O`; std only.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::{env, fs, process, thread};

fn main() {
    let Some(path) = env::args().nth(1) else {
        eprintln!("usage: bare_server RESPONSE_FILE");
        process::exit(2);
    };
    let answer: Arc<[u8]> = match fs::read(&path) {
        Ok(bytes) => bytes.into(),
        Err(error) => {
            eprintln!("bare_server: cannot read {path}: {error}");
            process::exit(1);
        }
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    println!("listening on http://127.0.0.1:{port}");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let answer = Arc::clone(&answer);
        thread::spawn(move || serve(stream, &answer));
    }
}

/// Answers each complete request head on `stream` until the peer closes.
fn serve(mut stream: TcpStream, answer: &[u8]) {
    let _ = stream.set_nodelay(true);
    let mut buffer = vec![0u8; 16 * 1024];
    // `filled` bytes of `buffer` are received and not yet answered.
    let mut filled = 0;
    loop {
        if filled == buffer.len() {
            return; // a head longer than 16 KiB: not a benchmark client
        }
        let n = match stream.read(&mut buffer[filled..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        filled += n;
        // Pipelined heads are each answered; a partial one waits for more.
        let mut start = 0;
        while let Some(end) = find_head_end(&buffer[start..filled]) {
            if stream.write_all(answer).is_err() {
                return;
            }
            start += end;
        }
        buffer.copy_within(start..filled, 0);
        filled -= start;
    }
}

/// The length of the first request head in `bytes`, its `\r\n\r\n` included.
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}
