//! Who may drive the server, over real sockets against the real binary: the
//! `Host` allow-list (DNS rebinding, `421`), the Fetch Metadata and `Origin`
//! checks on requests that change state (cross-site request forgery,
//! `403`), `graceful_shutdown` from the network (`403`), and the headers
//! every response carries. Each refusal is checked to have created no job
//! and left the server serving. The same attacks from a real browser are in
//! `scripts/browser_security_test.py`.

use crate::common::{self, http_with, HttpResponse, ServerProcess, TempDir};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

const OBESITY: &str = "Percent of adults aged 18 years and older who have obesity";

fn start(tag: &str, extra: &[&str]) -> (TempDir, ServerProcess) {
    let dir = TempDir::new(tag);
    let server = ServerProcess::start(&common::fixture("survey.csv"), dir.path(), extra);
    (dir, server)
}

fn body() -> String {
    format!(r#"{{"question": "{OBESITY}"}}"#)
}

/// A `global_mean` submission with `headers` (which name the `Host`).
fn submit(addr: SocketAddr, headers: &[(&str, &str)]) -> HttpResponse {
    http_with(addr, "POST", "/api/global_mean", headers, body().as_bytes())
}

fn reason(r: &HttpResponse) -> String {
    r.json()["reason"].as_str().unwrap_or_default().to_owned()
}

/// No job was ever created, the server is still `serving`, and a plain
/// client can still submit (which creates job 1: call this once, last).
fn assert_untouched_and_serving(server: &ServerProcess) {
    assert_eq!(
        server.get("/api/jobs").json()["data"],
        serde_json::json!([])
    );
    assert_eq!(
        server.get("/api/status").json()["shutdown_phase"],
        "serving"
    );
    assert_eq!(server.submit("global_mean", &body()), "job_id_1");
}

#[test]
fn a_host_that_is_not_an_ip_localhost_or_allowed_is_misdirected() {
    let (_dir, server) = start("sec-host", &["--allowed-host", "Stats.Example."]);
    let addr = server.addr;
    let port = addr.port();
    for host in [
        format!("evil.example:{port}"),
        "EVIL.example.".to_owned(),
        format!("localhost.evil.example:{port}"),
        format!("127.0.0.1.evil.example:{port}"),
        "localhost..".to_owned(),
        "sub.stats.example".to_owned(),
    ] {
        for (method, path) in [
            ("GET", "/api/jobs"),
            ("GET", "/api/status"),
            ("GET", "/metrics"),
            ("GET", "/"),
            ("GET", "/api/nowhere"),
            ("POST", "/api/global_mean"),
            ("GET", "/api/graceful_shutdown"),
        ] {
            let r = http_with(addr, method, path, &[("Host", &host)], body().as_bytes());
            assert_eq!(
                r.status,
                421,
                "{method} {path} with Host {host}: {}",
                r.text()
            );
            assert!(
                reason(&r).contains("--allowed-host NAME"),
                "the reason names the flag: {}",
                r.text()
            );
        }
    }
    for host in [
        format!("LocalHost.:{port}"),
        "localhost".to_owned(),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "[0:0:0:0:0:0:0:1]".to_owned(),
        "[::ffff:127.0.0.1]:1".to_owned(),
        // A port mapping (Docker's) changes the port: any port is fine.
        "stats.example:8080".to_owned(),
        "STATS.EXAMPLE.".to_owned(),
    ] {
        let r = http_with(addr, "GET", "/api/num_jobs", &[("Host", &host)], b"");
        assert_eq!(r.status, 200, "Host {host}: {}", r.text());
    }
    // HTTP/1.0 without Host: no name to check.
    let raw = common::raw(addr, b"GET /api/num_jobs HTTP/1.0\r\n\r\n");
    let r = common::parse_response(&raw).expect("a response");
    assert_eq!(r.status, 200, "{}", r.text());
    // An absolute-form target names the host, whatever `Host` says
    // (RFC 9112 §3.2.2): judged by the target's authority, both ways.
    for (authority, host, status) in [
        ("evil.example", "localhost", 421),
        ("localhost", "evil.example", 200),
    ] {
        let request =
            format!("GET http://{authority}:{port}/api/num_jobs HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let raw = common::raw(addr, request.as_bytes());
        let r = common::parse_response(&raw).expect("a response");
        assert_eq!(r.status, status, "{request:?}: {}", r.text());
    }
    assert_untouched_and_serving(&server);
}

#[test]
fn cross_site_requests_that_change_state_are_forbidden() {
    let (_dir, server) = start("sec-csrf", &["--allowed-origin", "http://localhost:3000"]);
    let addr = server.addr;
    let host = format!("localhost:{}", addr.port());
    let own_origin = format!("http://{host}");
    let host = ("Host", host.as_str());
    let refused: &[&[(&str, &str)]] = &[
        // An auto-submitted <form enctype="text/plain"> on another site.
        &[
            host,
            ("Origin", "http://evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
            ("Content-Type", "text/plain"),
        ],
        // A browser that sends no Fetch Metadata (Safari before 16.4).
        &[host, ("Origin", "http://evil.example")],
        &[host, ("Origin", "null")],
        &[host, ("Origin", "http://localhost:5001")],
        // Fetch Metadata without Origin.
        &[host, ("Sec-Fetch-Site", "cross-site")],
        &[host, ("Sec-Fetch-Site", "same-site")],
    ];
    for headers in refused {
        let r = submit(addr, headers);
        assert_eq!(r.status, 403, "{headers:?}: {}", r.text());
        assert!(
            reason(&r).contains("--allowed-origin ORIGIN"),
            "{}",
            r.text()
        );
        assert_eq!(r.header("access-control-allow-origin"), None);
    }
    // What <img src=".../api/graceful_shutdown"> on another page sends.
    let image = [
        host,
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Mode", "no-cors"),
        ("Sec-Fetch-Dest", "image"),
    ];
    for method in ["GET", "POST"] {
        let r = http_with(addr, method, "/api/graceful_shutdown", &image, b"");
        assert_eq!(r.status, 403, "{method}: {}", r.text());
        assert!(reason(&r).contains("shut the server down"), "{}", r.text());
    }
    // Reading is not refused (the browser keeps the answer from the page:
    // no Access-Control-Allow-Origin is ever sent).
    let r = http_with(addr, "GET", "/api/num_jobs", &image, b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_untouched_and_serving(&server);

    // The server's own page, a tab's address bar, the allowed front-end.
    let allowed: &[&[(&str, &str)]] = &[
        &[
            host,
            ("Origin", &own_origin),
            ("Sec-Fetch-Site", "same-origin"),
        ],
        &[host, ("Sec-Fetch-Site", "none")],
        &[
            host,
            ("Origin", "http://localhost:3000"),
            ("Sec-Fetch-Site", "same-site"),
        ],
    ];
    for (i, headers) in allowed.iter().enumerate() {
        let r = submit(addr, headers);
        assert_eq!(r.status, 200, "{headers:?}: {}", r.text());
        assert_eq!(r.json()["job_id"], format!("job_id_{}", i + 2));
        assert_eq!(r.header("access-control-allow-origin"), None);
    }
}

/// This machine's address on its outbound interface, which is not
/// loopback: a UDP `connect` picks it without sending anything. `None`
/// when the machine has no route out.
fn non_loopback_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

fn shutdown_from(ip: IpAddr, port: u16) -> HttpResponse {
    let addr = SocketAddr::new(ip, port);
    let host = addr.to_string();
    http_with(
        addr,
        "GET",
        "/api/graceful_shutdown",
        &[("Host", &host)],
        b"",
    )
}

#[test]
fn graceful_shutdown_from_the_network_is_forbidden_unless_allowed() {
    let Some(lan) = non_loopback_address() else {
        eprintln!(
            "\n*** SKIPPED: this machine has no non-loopback address to connect from; \
             the remote-shutdown rule is checked only by the unit test \
             only_loopback_peers_may_shut_down_unless_allowed ***\n"
        );
        return;
    };
    let (_dir, server) = start("sec-remote", &["--host", "0.0.0.0"]);
    let port = server.addr.port();
    let r = shutdown_from(lan, port);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        reason(&r).contains(&format!("from {lan}"))
            && reason(&r).contains("--allow-remote-shutdown"),
        "{}",
        r.text()
    );
    // The start-up warning, in the server log (and on stderr).
    let log = common::poll(Duration::from_secs(30), || {
        let log = std::fs::read_to_string(&server.log_file).ok()?;
        log.contains("beyond loopback").then_some(log)
    });
    assert!(
        log.contains("graceful_shutdown is reachable from the network"),
        "{log}"
    );
    assert_untouched_and_serving(&server);
    let r = shutdown_from(IpAddr::from([127, 0, 0, 1]), port);
    assert_eq!(r.status, 200, "from loopback: {}", r.text());

    let (_dir, server) = start(
        "sec-remote-allowed",
        &["--host", "0.0.0.0", "--allow-remote-shutdown"],
    );
    let r = shutdown_from(lan, server.addr.port());
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn ipv4_mapped_loopback_may_shut_down() {
    // On `::` an IPv4 client's peer address is `::ffff:127.0.0.1`.
    let (_dir, server) = start("sec-mapped", &["--host", "::"]);
    let r = shutdown_from(IpAddr::from([127, 0, 0, 1]), server.addr.port());
    assert_eq!(r.status, 200, "{}", r.text());
    common::poll(Duration::from_secs(30), || {
        (server.get("/api/status").json()["shutdown_phase"] == "drained").then_some(())
    });
}

#[test]
fn every_response_says_nosniff_and_pages_cannot_be_framed() {
    let (_dir, server) = start("sec-headers", &[]);
    let addr = server.addr;
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(
        server.get("/status").header("x-frame-options"),
        Some("DENY")
    );
    let local = [("Host", "localhost")];
    let responses = [
        page,
        server.get("/api/num_jobs"),
        server.get("/api/jobs"),
        server.get("/api/nowhere"),
        server.get("/api/global_mean"),
        server.post("/api/global_mean", "{"),
        http_with(addr, "GET", "/", &[("Host", "evil.example")], b""),
        http_with(
            addr,
            "POST",
            "/api/global_mean",
            &[local[0], ("Sec-Fetch-Site", "cross-site")],
            body().as_bytes(),
        ),
        // A request the parser refuses, before any handler.
        http_with(addr, "GET", "/", &[("Host", "a b")], b""),
    ];
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 200, 404, 405, 400, 421, 403, 400]);
    for r in &responses {
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{} {}",
            r.status,
            r.text()
        );
        assert_eq!(r.header("access-control-allow-origin"), None);
    }
}
