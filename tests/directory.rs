//! The directory poller through the binary: batches and multi-message
//! files committed whole, files taken only once settled and moved only
//! after the commit, non-HL7 files kept as errors.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

const CHANNEL: &str = "name: drop\nsource:\n  type: directory\n  path: inbox\n  pattern: \"*.hl7\"\n  poll_interval: 300ms\ndestinations:\n  - name: out\n    type: file\n    directory: out\n";

#[test]
fn picks_up_settled_files_and_moves_them_after_commit() {
    let setup = Setup::new(SERVER, &[("drop.yaml", CHANNEL)]);
    let server = Server::start(&setup);
    let inbox = server.data.join("inbox");
    server.wait_for(5, "the inbox to exist", || inbox.exists());

    // A batch of two messages.
    std::fs::write(
        inbox.join("batch.hl7"),
        fixture("hl7-batch/adt-batch-2.hl7"),
    )
    .unwrap();
    server.wait_for(10, "the batch to be committed and moved", || {
        inbox.join("processed/batch.hl7").exists()
    });
    let ids: Vec<String> = server
        .messages()
        .iter()
        .rev()
        .map(|m| m["control_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["B1-1", "B1-2"]);
    assert!(!inbox.join("batch.hl7").exists());

    // A file written slowly is not taken until it stops growing.
    let path = inbox.join("slow.hl7");
    let body = adt("SLOW-FILE");
    let mut f = std::fs::File::create(&path).unwrap();
    for chunk in body.chunks(body.len() / 4 + 1) {
        f.write_all(chunk).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(f);
    server.wait_for(10, "the slow file", || {
        inbox.join("processed/slow.hl7").exists()
    });
    let slow = server
        .messages()
        .into_iter()
        .find(|m| m["control_id"] == "SLOW-FILE")
        .unwrap();
    let raw = server
        .cli(&["messages", "show", slow["id"].as_str().unwrap(), "--raw"])
        .stdout;
    assert_eq!(raw, body, "the whole file, not a part of it");

    // Not HL7: stored as an error, file moved on; other names ignored.
    std::fs::write(inbox.join("junk.hl7"), b"this is not a message").unwrap();
    std::fs::write(inbox.join("notes.txt"), b"ignored").unwrap();
    server.wait_for(10, "the junk file", || {
        inbox.join("processed/junk.hl7").exists()
    });
    let junk = server
        .messages()
        .into_iter()
        .find(|m| m["state"] == "error")
        .unwrap();
    assert!(
        junk["error"]
            .as_str()
            .unwrap()
            .contains("not a readable HL7")
    );
    assert!(inbox.join("notes.txt").exists());
    server.wait_for(10, "three deliveries", || {
        std::fs::read_dir(server.data.join("out"))
            .map(|d| d.count() == 3)
            .unwrap_or(false)
    });
}
