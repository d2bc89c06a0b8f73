//! Destinations through the binary: a destination down then up, order,
//! rate limit and circuit breaker seen from outside, isolation between
//! destinations, and ACK classification at the sender.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;

fn free_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn channel(dest: &str) -> String {
    format!("name: out\nsource:\n  type: mllp\n  listen: mllp\ndestinations:\n{dest}")
}

#[test]
fn destination_down_then_up_delivers_everything_in_order() {
    let addr = free_port();
    let dest = format!(
        "  - name: lab\n    type: mllp\n    address: {addr}\n    connect_timeout: 500ms\n    timeout: 2s\n    retry:\n      initial: 50ms\n      max_delay: 200ms\n    circuit_breaker:\n      failures: 3\n      cool_down: 300ms\n"
    );
    let setup = Setup::new(SERVER, &[("out.yaml", &channel(&dest))]);
    let server = Server::start(&setup);
    let mut c = Mllp::connect(server.mllp());
    let sent: Vec<String> = (0..20).map(|i| format!("ORDER-{i:02}")).collect();
    for id in &sent {
        assert_eq!(ack_fields(&c.request(&adt(id))).0, "AA");
    }
    // While the peer is down: the first delivery is retrying, the breaker opens.
    server.wait_for(10, "the circuit breaker to open", || {
        let (_, m) = server.http_get("/metrics");
        metric(&m, "caduceus_circuit_state", &[("destination", "lab")]) == Some(1.0)
    });
    let first = server.messages().last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = server.cli_ok(&["messages", "show", &first]);
    assert!(shown.contains("retrying"), "{shown}");
    assert!(shown.contains("cannot connect"), "{shown}");
    server.wait_for(5, "the queue depth gauge to show 20", || {
        let (_, m) = server.http_get("/metrics");
        metric(&m, "caduceus_queue_depth", &[("destination", "lab")]) == Some(20.0)
    });

    // The peer comes up: everything arrives, in order.
    let rx = Receiver::bind(&addr);
    server.wait_for(20, "all 20 messages at the receiver", || rx.count() >= 20);
    assert_eq!(rx.control_ids(), sent);
    server.wait_for(10, "the breaker to close", || {
        let (_, m) = server.http_get("/metrics");
        metric(&m, "caduceus_circuit_state", &[("destination", "lab")]) == Some(0.0)
    });
    // It went closed → open → half-open → closed, and said so.
    let log = server.log_text();
    for t in [
        "from=closed to=open",
        "from=open to=half-open",
        "from=half-open to=closed",
    ] {
        assert!(log.contains(t), "missing transition {t}:\n{log}");
    }
    let shown = server.cli_ok(&["messages", "show", &first]);
    assert!(shown.contains(" sent "), "{shown}");
    let (_, m) = server.http_get("/metrics");
    assert_eq!(
        metric(
            &m,
            "caduceus_deliveries_total",
            &[("destination", "lab"), ("outcome", "sent")]
        ),
        Some(20.0)
    );
    assert!(metric(&m, "caduceus_retries_total", &[("destination", "lab")]).unwrap_or(0.0) >= 1.0);
}

#[test]
fn rate_limit_holds_at_the_receiver() {
    let rx = Receiver::start();
    let dest = format!(
        "  - name: lab\n    type: mllp\n    address: {}\n    rate_limit:\n      per_second: 20\n      burst: 1\n",
        rx.addr
    );
    let setup = Setup::new(SERVER, &[("out.yaml", &channel(&dest))]);
    let server = Server::start(&setup);
    let mut c = Mllp::connect(server.mllp());
    let mut burst = Vec::new();
    for i in 0..30 {
        burst.extend(frame(&adt(&format!("RATE-{i}"))));
    }
    c.send_raw(&burst);
    for _ in 0..30 {
        c.read().unwrap();
    }
    server.wait_for(20, "30 messages at the receiver", || rx.count() >= 30);
    let times: Vec<Instant> = rx
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|(t, _)| *t)
        .collect();
    // At 20/s with a burst of 1, any 10 consecutive messages span at least
    // 9 intervals of 50 ms (less a little for timer slack).
    for w in times.windows(10) {
        let span = w[9] - w[0];
        assert!(
            span >= Duration::from_millis(420),
            "10 messages within {span:?}: over the limit"
        );
    }
}

#[test]
fn a_dead_destination_does_not_slow_the_others() {
    let down = free_port();
    let dest = format!(
        "  - name: down\n    type: mllp\n    address: {down}\n    connect_timeout: 200ms\n    retry:\n      initial: 100ms\n      max_delay: 1s\n  - name: files\n    type: file\n    directory: out\n"
    );
    let setup = Setup::new(SERVER, &[("out.yaml", &channel(&dest))]);
    let server = Server::start(&setup);
    let mut c = Mllp::connect(server.mllp());
    for i in 0..10 {
        c.request(&adt(&format!("ISO-{i}")));
    }
    server.wait_for(5, "ten files while the other destination is down", || {
        std::fs::read_dir(server.data.join("out"))
            .map(|d| d.count() == 10)
            .unwrap_or(false)
    });
    let (_, m) = server.http_get("/metrics");
    assert_eq!(
        metric(
            &m,
            "caduceus_deliveries_total",
            &[("destination", "down"), ("outcome", "sent")]
        )
        .unwrap_or(0.0),
        0.0
    );
}

#[test]
fn nacks_are_classified_at_the_sender() {
    let rx = Receiver::start();
    rx.set_code("AR");
    let dest = format!(
        "  - name: lab\n    type: mllp\n    address: {}\n    retry:\n      initial: 20ms\n      max_delay: 50ms\n      max_attempts: 3\n",
        rx.addr
    );
    let setup = Setup::new(SERVER, &[("out.yaml", &channel(&dest))]);
    let server = Server::start(&setup);
    let mut c = Mllp::connect(server.mllp());
    c.request(&adt("REJECTED"));
    server.wait_for(10, "the AR to make the delivery dead", || {
        server.cli_ok(&["messages", "show", "1"]).contains("dead")
    });
    assert_eq!(rx.count(), 1, "AR is final: no retry");
    let shown = server.cli_ok(&["messages", "show", "1"]);
    assert!(shown.contains("peer answered AR"), "{shown}");

    // AE is retried, up to max_attempts, then dead.
    rx.set_code("AE");
    c.request(&adt("ERRORED"));
    server.wait_for(10, "three attempts then dead", || {
        server.cli_ok(&["messages", "show", "2"]).contains("dead")
    });
    assert_eq!(rx.count(), 4);
    let shown = server.cli_ok(&["messages", "show", "2"]);
    assert!(shown.contains("gave up after 3 attempt(s)"), "{shown}");
    assert!(shown.contains("attempts 3"), "{shown}");
}

/// A slow HTTP server that records the most requests it ever had open at
/// once (each answer takes 150 ms).
struct SlowHttp {
    addr: String,
    most: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SlowHttp {
    fn start() -> SlowHttp {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let most = Arc::new(AtomicUsize::new(0));
        let served = Arc::new(AtomicUsize::new(0));
        let inside = Arc::new(AtomicUsize::new(0));
        let (m, s) = (most.clone(), served.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().take(64).flatten() {
                let (m, s, inside) = (m.clone(), s.clone(), inside.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut r = BufReader::new(stream);
                    loop {
                        let mut len = 0usize;
                        let mut line = String::new();
                        let mut first = true;
                        loop {
                            line.clear();
                            if r.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if first {
                                first = false;
                                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                                m.fetch_max(now, Ordering::SeqCst);
                            }
                            let l = line.to_ascii_lowercase();
                            if let Some(v) = l.strip_prefix("content-length:") {
                                len = v.trim().parse().unwrap_or(0);
                            }
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let mut body = vec![0u8; len];
                        if r.read_exact(&mut body).is_err() {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(150));
                        inside.fetch_sub(1, Ordering::SeqCst);
                        s.fetch_add(1, Ordering::SeqCst);
                        let _ = r
                            .get_mut()
                            .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
                    }
                });
            }
        });
        SlowHttp { addr, most, served }
    }
}

#[test]
fn a_shared_concurrency_limit_caps_requests_in_flight_at_the_partner() {
    use std::sync::atomic::Ordering;
    // Three destinations calling one partner: with a shared limit of 1 the
    // partner never has two requests open; without it, it does.
    for limit in [true, false] {
        let rx = SlowHttp::start();
        let mut dests = String::new();
        for i in 0..3 {
            dests.push_str(&format!(
                "  - name: billing-{i}\n    type: http\n    url: http://{}/in\n",
                rx.addr
            ));
            if limit {
                dests.push_str("    concurrency_limit: { max: 1, shared: billing }\n");
            }
        }
        let setup = Setup::new(SERVER, &[("out.yaml", &channel(&dests))]);
        let server = Server::start(&setup);
        let mut c = Mllp::connect(server.mllp());
        for i in 0..2 {
            assert_eq!(ack_fields(&c.request(&adt(&format!("CONC-{i}")))).0, "AA");
        }
        server.wait_for(20, "six requests at the partner", || {
            rx.served.load(Ordering::SeqCst) >= 6
        });
        let most = rx.most.load(Ordering::SeqCst);
        if limit {
            assert_eq!(
                most, 1,
                "a shared limit of 1 let {most} requests in at once"
            );
        } else {
            assert!(most > 1, "without a limit the three destinations overlap");
        }
    }
}
