//! TLS and mutual TLS through the binary, with connector files: the
//! listener refuses clients with no certificate, an expired one or one from
//! another CA, and accepts the right one; the MLLP sender presents its
//! certificate and refuses a server its pinned CA did not sign.

mod common;

use std::path::Path;
use std::process::Command;

use caduceus::tls::dev::{DevCa, write_pair};
use common::*;

fn send(
    server: &Server,
    certs: &Path,
    client: Option<&str>,
    files: &[&str],
) -> std::process::Output {
    let addr = server.addr("secure").to_string();
    let mut cmd = Command::new(BIN);
    cmd.args([
        "send",
        "mllp",
        "--to",
        &addr,
        "--timeout",
        "5s",
        "--server-name",
        "localhost",
        "--tls-ca",
    ])
    .arg(certs.join("ca.pem"));
    if let Some(c) = client {
        cmd.arg("--tls-cert")
            .arg(certs.join(format!("{c}.pem")))
            .arg("--tls-key")
            .arg(certs.join(format!("{c}.key")));
    }
    let tmp = certs.join("msg.hl7");
    std::fs::write(&tmp, adt(files[0])).unwrap();
    cmd.arg(&tmp).output().unwrap()
}

#[test]
fn mutual_tls_listener_and_sender() {
    let setup = Setup::new(SERVER, &[]);
    let certs = setup.path().join("connectors/certs");
    dev_certs(&certs);

    // `secure`: an mTLS listener. `relay`: plain in, out over mTLS to
    // `secure`. `pinned`: out to `secure` but pinning the wrong CA.
    let secure = "name: secure\nsource:\n  type: mllp\n  listen: 127.0.0.1:0\n  tls:\n    cert: certs/server.pem\n    key: certs/server.key\n    client_ca: certs/ca.pem\n";
    std::fs::write(setup.path().join("connectors/secure.yaml"), secure).unwrap();
    let mut server = Server::start(&setup);
    let secure_addr = server.addr("secure").to_string();
    server.kill9();
    let relay = format!(
        "name: relay\nsource:\n  type: mllp\n  listen: mllp\ndestinations:\n  - name: tls-out\n    type: mllp\n    address: {secure_addr}\n    tls:\n      ca: certs/ca.pem\n      cert: certs/partner-a.pem\n      key: certs/partner-a.key\n      server_name: localhost\n  - name: wrong-ca\n    type: mllp\n    address: {secure_addr}\n    connect_timeout: 1s\n    retry:\n      initial: 50ms\n      max_delay: 100ms\n    tls:\n      ca: certs/other-ca.pem\n      server_name: localhost\n"
    );
    std::fs::write(setup.path().join("connectors/relay.yaml"), relay).unwrap();
    let secure_fixed = secure.replace("listen: 127.0.0.1:0", &format!("listen: {secure_addr}"));
    std::fs::write(setup.path().join("connectors/secure.yaml"), secure_fixed).unwrap();
    server.restart();

    // No client certificate: refused.
    let out = send(&server, &certs, None, &["NO-CERT"]);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A certificate from another CA: refused.
    let out = send(&server, &certs, Some("stranger"), &["OTHER-CA"]);
    assert!(!out.status.success());
    // An expired certificate from the right CA: refused.
    let out = send(&server, &certs, Some("expired"), &["EXPIRED"]);
    assert!(!out.status.success());
    // The right one: accepted.
    let out = send(&server, &certs, Some("partner-a"), &["GOOD-CERT"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("GOOD-CERT\tAA"));
    let stored: Vec<String> = server
        .messages()
        .iter()
        .map(|m| m["control_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored, ["GOOD-CERT"], "refused clients must store nothing");

    // The relay's mTLS sender delivers to the secure listener...
    let mut c = Mllp::connect(server.mllp());
    assert_eq!(ack_fields(&c.request(&adt("RELAYED"))).0, "AA");
    server.wait_for(10, "the relayed message on the secure channel", || {
        server
            .messages()
            .iter()
            .any(|m| m["channel"] == "secure" && m["control_id"] == "RELAYED")
    });
    // ...and the sender pinned to another CA refuses the server.
    let relayed = server
        .messages()
        .into_iter()
        .find(|m| m["channel"] == "relay")
        .unwrap();
    let id = relayed["id"].as_str().unwrap().to_string();
    server.wait_for(10, "the wrong-CA delivery to be retrying", || {
        let s = server.cli_ok(&["messages", "show", &id]);
        s.contains("wrong-ca  retrying") && s.contains("TLS handshake failed")
    });
}

#[test]
fn missing_certificate_files_fail_check_with_the_file_named() {
    let channel = "name: secure\nsource:\n  type: mllp\n  listen: 127.0.0.1:0\n  tls:\n    cert: nowhere/server.pem\n    key: nowhere/server.key\n";
    let setup = Setup::new(SERVER, &[("secure.yaml", channel)]);
    let out = Command::new(BIN)
        .arg("--config")
        .arg(setup.config())
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("secure.yaml: source.tls:") && text.contains("nowhere/server.pem"),
        "{text}"
    );
}

/// A listener's certificate files replaced while it runs: new connections
/// get the new certificate (no restart); a replacement that does not load
/// is logged and the last good certificate keeps serving.
#[test]
fn listener_certificates_reload_without_a_restart() {
    let setup = Setup::new(SERVER, &[]);
    let certs = setup.path().join("connectors/certs");
    let old_ca = DevCa::new("old CA").unwrap();
    let new_ca = DevCa::new("new CA").unwrap();
    write_pair(&certs, "ca", &old_ca.pem()).unwrap();
    write_pair(
        &certs,
        "server",
        &old_ca.server(&["localhost", "127.0.0.1"]).unwrap(),
    )
    .unwrap();
    let secure = "name: secure\nsource:\n  type: mllp\n  listen: 127.0.0.1:0\n  tls:\n    cert: certs/server.pem\n    key: certs/server.key\n";
    std::fs::write(setup.path().join("connectors/secure.yaml"), secure).unwrap();
    let server = Server::start(&setup);
    assert!(
        send(&server, &certs, None, &["BEFORE"]).status.success(),
        "the old CA's certificate serves"
    );

    // Replace the certificate and key with ones from another CA; clients now trust that one.
    write_pair(
        &certs,
        "server",
        &new_ca.server(&["localhost", "127.0.0.1"]).unwrap(),
    )
    .unwrap();
    write_pair(&certs, "ca", &new_ca.pem()).unwrap();
    server.wait_for(20, "the new certificate to serve", || {
        server.log_text().contains("TLS certificate reloaded")
            && send(&server, &certs, None, &["AFTER"]).status.success()
    });

    // A broken replacement (a key that is not the certificate's): logged, the good one stays.
    let stray = new_ca.server(&["localhost"]).unwrap();
    std::fs::write(certs.join("server.key"), stray.key).unwrap();
    server.wait_for(20, "the broken change to be reported", || {
        server.log_text().contains("do not load")
    });
    assert!(
        send(&server, &certs, None, &["STILL"]).status.success(),
        "the last good certificate keeps serving"
    );
}

/// A destination's pinned CA and client certificate replaced while the
/// server runs: the next handshake uses the new files (no restart). The
/// partner here is the server's own mTLS listener, which trusts only
/// clients of the "new" CA and serves a "new" CA certificate.
#[test]
fn destination_certificates_reload_without_a_restart() {
    let setup = Setup::new(SERVER, &[]);
    let certs = setup.path().join("connectors/certs");
    let old_ca = DevCa::new("old CA").unwrap();
    let new_ca = DevCa::new("new CA").unwrap();
    write_pair(&certs, "new-ca", &new_ca.pem()).unwrap();
    write_pair(&certs, "server", &new_ca.server(&["localhost"]).unwrap()).unwrap();
    // The destination starts pinned to the old CA, with an old-CA client certificate.
    write_pair(&certs, "pin", &old_ca.pem()).unwrap();
    write_pair(&certs, "me", &old_ca.client("relay").unwrap()).unwrap();
    let secure = "name: secure\nsource:\n  type: mllp\n  listen: 127.0.0.1:0\n  tls:\n    cert: certs/server.pem\n    key: certs/server.key\n    client_ca: certs/new-ca.pem\n";
    std::fs::write(setup.path().join("connectors/secure.yaml"), secure).unwrap();
    let mut server = Server::start(&setup);
    let addr = server.addr("secure").to_string();
    server.kill9();
    std::fs::write(
        setup.path().join("connectors/secure.yaml"),
        secure.replace("127.0.0.1:0", &addr),
    )
    .unwrap();
    let relay = format!(
        "name: relay\nsource:\n  type: mllp\n  listen: mllp\ndestinations:\n  - name: out\n    type: mllp\n    address: {addr}\n    connect_timeout: 1s\n    retry:\n      initial: 100ms\n      max_delay: 200ms\n    circuit_breaker:\n      cool_down: 200ms\n    tls:\n      ca: certs/pin.pem\n      cert: certs/me.pem\n      key: certs/me.key\n      server_name: localhost\n"
    );
    std::fs::write(setup.path().join("connectors/relay.yaml"), relay).unwrap();
    server.restart();

    let mut c = Mllp::connect(server.mllp());
    assert_eq!(ack_fields(&c.request(&adt("PINNED"))).0, "AA");
    let id = server
        .messages()
        .into_iter()
        .find(|m| m["channel"] == "relay")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    server.wait_for(10, "the old pin to refuse the partner", || {
        let s = server.cli_ok(&["messages", "show", &id]);
        s.contains("out  retrying") && s.contains("TLS handshake failed")
    });

    // The partner's CA and a client certificate it trusts replace the old files.
    write_pair(&certs, "me", &new_ca.client("relay").unwrap()).unwrap();
    write_pair(&certs, "pin", &new_ca.pem()).unwrap();
    server.wait_for(20, "the delivery over the reloaded files", || {
        server
            .messages()
            .iter()
            .any(|m| m["channel"] == "secure" && m["control_id"] == "PINNED")
    });
    assert!(server.log_text().contains("outbound TLS files reloaded"));
}
