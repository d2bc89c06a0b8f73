//! Crash safety through the binary: messages sent continuously, `kill -9`
//! at random points with sends still unacknowledged, restart, several
//! cycles; every acknowledged control id is stored and arrives at receivers
//! outside the server process, with the same idempotency key on redelivery.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

fn free_port() -> String {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string()
}

/// Sends messages with unique control ids, four in flight, reconnecting
/// whenever the server goes away; records the ids it got AA for.
fn sender(addr: String, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<String>>>) {
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let Ok(stream) = std::net::TcpStream::connect(&addr) else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut c = Mllp::from_stream(stream);
        'conn: while !stop.load(Ordering::SeqCst) {
            let batch: Vec<String> = (0..4).map(|i| format!("CRASH-{}", n + i)).collect();
            n += 4;
            let mut bytes = Vec::new();
            for id in &batch {
                bytes.extend(frame(&adt(id)));
            }
            if c.stream.write_all(&bytes).is_err() {
                break 'conn;
            }
            for id in &batch {
                match c.read() {
                    Some(ack) => {
                        let (code, ctrl, _) = ack_fields(&ack);
                        assert_eq!(&ctrl, id, "ACKs must come back in order");
                        if code == "AA" {
                            acked.lock().unwrap().push(ctrl);
                        }
                    }
                    None => break 'conn,
                }
            }
        }
    }
}

#[test]
fn kill_9_loses_no_acknowledged_message() {
    let mllp_addr = free_port();
    let rx = Receiver::start();
    let outside = tempfile::tempdir().unwrap();
    let server_cfg =
        format!("listeners:\n  http: 127.0.0.1:0\n  mllp: {mllp_addr}\nshutdown_grace: 2s\n");
    let channel = format!(
        "name: crash\nsource:\n  type: mllp\n  listen: mllp\ndestinations:\n  - name: peer\n    type: mllp\n    address: {}\n    retry:\n      initial: 20ms\n      max_delay: 200ms\n  - name: files\n    type: file\n    directory: {}\n",
        rx.addr,
        outside.path().display()
    );
    let setup = Setup::new(&server_cfg, &[("crash.yaml", &channel)]);
    let mut server = Server::start(&setup);

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let t = {
        let (a, s, k) = (mllp_addr.clone(), stop.clone(), acked.clone());
        std::thread::spawn(move || sender(a, s, k))
    };
    for cycle in 0..5 {
        std::thread::sleep(Duration::from_millis(300 + fastrand::u64(0..500)));
        let before = acked.lock().unwrap().len();
        server.kill9();
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..200)));
        server.restart();
        eprintln!("cycle {cycle}: {before} acknowledged before the kill");
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    t.join().unwrap();
    let acked: BTreeSet<String> = acked.lock().unwrap().iter().cloned().collect();
    assert!(
        acked.len() > 50,
        "the sender should have got many ACKs, got {}",
        acked.len()
    );

    // Every acknowledged id is stored...
    let stored: BTreeSet<String> = server
        .messages()
        .iter()
        .filter_map(|m| m["control_id"].as_str().map(String::from))
        .collect();
    let missing: Vec<&String> = acked.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );

    // ...and reaches the MLLP receiver (at least once)...
    server.wait_for(60, "every acknowledged id at the receiver", || {
        let got: BTreeSet<String> = rx.control_ids().into_iter().collect();
        acked.is_subset(&got)
    });
    // ...and the file destination, where a redelivery reuses the same key
    // (the file name): one file per message, never two.
    server.wait_for(60, "every acknowledged id in the outside folder", || {
        let mut by_ctrl: BTreeMap<String, usize> = BTreeMap::new();
        for e in std::fs::read_dir(outside.path()).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().unwrap().to_string_lossy().starts_with('.') {
                continue;
            }
            let body = std::fs::read(&p).unwrap();
            let ctrl = hl7v2::Message::parse(&body)
                .unwrap()
                .control_id()
                .into_owned();
            *by_ctrl.entry(ctrl).or_default() += 1;
        }
        assert!(
            by_ctrl.values().all(|n| *n == 1),
            "a message was written under two keys"
        );
        acked.iter().all(|c| by_ctrl.contains_key(c))
    });
    // Redeliveries carry the same control id (MSH-10 is never rewritten).
    let received = rx.control_ids();
    assert!(received.iter().all(|c| c.starts_with("CRASH-")));
}
