//! A FHIR channel on its own HTTPS listener with mutual TLS, through the
//! binary: no certificate, an expired one and one from another CA are
//! refused at the handshake; a valid certificate of a partner the channel
//! does not list gets 401; the listed partner's certificate is accepted and
//! recorded as the sender. And end to end: HL7 over MLLP, mapped, sent as a
//! FHIR transaction over mutual TLS to that listener (another Caduceus as
//! the FHIR server); a sender pinned to another CA refuses the server.

mod common;

use std::path::Path;

use caduceus::tls::{TlsClientConfig, client_config};
use common::*;

const PATIENT: &str = r#"{"resourceType":"Patient","gender":"female"}"#;

fn client(certs: &Path, who: Option<&str>) -> reqwest::Client {
    let cfg = TlsClientConfig {
        ca: certs.join("ca.pem"),
        cert: who.map(|w| certs.join(format!("{w}.pem"))),
        key: who.map(|w| certs.join(format!("{w}.key"))),
        server_name: None,
        min_version: Default::default(),
    };
    let mut tls = (*client_config(&cfg, certs).unwrap()).clone();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        // A stalled exchange fails the test with the request named, not the run.
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn post(c: &reqwest::Client, url: &str) -> Result<(u16, String), String> {
    let r = c
        .post(url)
        .header("Content-Type", "application/fhir+json")
        .body(PATIENT)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = r.status().as_u16();
    Ok((status, r.text().await.unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_decide_who_may_send() {
    let setup = Setup::new(SERVER, &[]);
    let certs = setup.path().join("connectors/certs");
    dev_certs(&certs);
    let ch = "name: secure\nsource:\n  type: fhir\n  listen: 127.0.0.1:0\n  tls:\n    cert: certs/server.pem\n    key: certs/server.key\n    client_ca: certs/ca.pem\n  partners:\n    - name: acme\n      certificate: partner-a\n";
    std::fs::write(setup.path().join("connectors/secure.yaml"), ch).unwrap();
    let server = Server::start(&setup);
    let url = format!(
        "https://localhost:{}/fhir/Patient",
        server.addr("secure").port()
    );

    // Refused at the handshake: no certificate, expired, another CA.
    for who in [None, Some("expired"), Some("stranger")] {
        let r = post(&client(&certs, who), &url).await;
        assert!(r.is_err(), "{who:?} was let in: {r:?}");
    }
    // A good certificate of someone the channel does not list: 401.
    let (status, body) = post(&client(&certs, Some("partner-b")), &url)
        .await
        .unwrap();
    assert_eq!(status, 401, "{body}");
    // The listed partner.
    let (status, body) = post(&client(&certs, Some("partner-a")), &url)
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    let list = server.messages();
    assert_eq!(list.len(), 1, "refusals store nothing");
    let id = list[0]["id"].as_str().unwrap().to_string();
    let d: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["messages", "show", &id, "--json"])).unwrap();
    assert_eq!(d["sender"], "acme");
    assert_eq!(d["peer"], "certificate CN=partner-a");
    // The shared HTTP listener does not serve this channel.
    let r = http_request(
        server.http(),
        "POST",
        "/fhir/Patient",
        &[("Content-Type", "application/fhir+json")],
        PATIENT.as_bytes(),
    );
    assert_eq!(r.status, 404, "{}", r.body);
}

#[test]
fn hl7_to_fhir_over_mutual_tls_and_a_pinned_ca() {
    // The receiving side: a FHIR intake on its own mTLS listener, archiving to files.
    let recv = Setup::new(SERVER, &[]);
    let certs = recv.path().join("connectors/certs");
    dev_certs(&certs);
    let ch = "name: ehr\nsource:\n  type: fhir\n  listen: 127.0.0.1:0\n  resources: [Bundle]\n  tls:\n    cert: certs/server.pem\n    key: certs/server.key\n    client_ca: certs/ca.pem\n  partners:\n    - name: hl7-gateway\n      certificate: partner-a\ndestinations:\n  - name: store\n    type: file\n    directory: received\n";
    std::fs::write(recv.path().join("connectors/ehr.yaml"), ch).unwrap();
    let receiver = Server::start(&recv);
    let port = receiver.addr("ehr").port();

    // The sending side: HL7 over MLLP → map → two FHIR destinations, one pinned to the wrong CA.
    let certs_dir = certs.display().to_string();
    let send_ch = format!(
        "name: adt\nsource:\n  type: mllp\n  listen: mllp\nsteps:\n  - map: hl7v2-fhir-r4\ndestinations:\n  - name: ehr\n    type: fhir\n    base_url: https://localhost:{port}/fhir\n    tls: {{ ca: {certs_dir}/ca.pem, cert: {certs_dir}/partner-a.pem, key: {certs_dir}/partner-a.key }}\n  - name: impostor-check\n    type: fhir\n    base_url: https://localhost:{port}/fhir\n    retry: {{ initial: 100ms, max_delay: 1s }}\n    tls: {{ ca: {certs_dir}/other-ca.pem, cert: {certs_dir}/partner-a.pem, key: {certs_dir}/partner-a.key }}\n"
    );
    let send = Setup::new(SERVER, &[("adt.yaml", &send_ch)]);
    copy_mappings(&send.path().join("mappings"));
    let sender = Server::start(&send);
    let mut c = Mllp::connect(sender.mllp());
    assert_eq!(
        ack_fields(&c.request(&fixture("hl7/ADT-A01-01.hl7"))).0,
        "AA"
    );

    // Delivered over mTLS: the receiver stored a transaction Bundle from the gateway's certificate.
    receiver.wait_for(30, "the Bundle at the receiver", || {
        receiver
            .messages()
            .iter()
            .any(|m| m["type"] == "Bundle:transaction")
    });
    let m = &receiver.messages()[0];
    let d: serde_json::Value = serde_json::from_str(&receiver.cli_ok(&[
        "messages",
        "show",
        m["id"].as_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    assert_eq!(d["sender"], "hl7-gateway");
    // The destination pinned to another CA never talked to it.
    let id = sender.messages()[0]["id"].as_str().unwrap().to_string();
    sender.wait_for(30, "the pinned-CA failure", || {
        let d: serde_json::Value =
            serde_json::from_str(&sender.cli_ok(&["messages", "show", &id, "--json"])).unwrap();
        d["deliveries"].as_array().unwrap().iter().any(|x| {
            x["destination"] == "impostor-check"
                && x["state"] == "retrying"
                && !x["last_error"].is_null()
        })
    });
    assert_eq!(
        receiver.messages().len(),
        1,
        "one delivery arrived, not two"
    );
}
