//! The FHIR destination through the binary against a mock FHIR server
//! (wiremock): HL7 over MLLP mapped and delivered as a transaction; each
//! response class (2xx with warnings, 400, 500 then success, 429 with
//! Retry-After, 401 with a token refresh, a timeout), with what is stored
//! and what is retried, counted at the mock.

mod common;

use std::time::Duration;

use common::*;
use wiremock::matchers::{body_string_contains, header, header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN_A: &str = "token-a";
const TOKEN_A_SHA: &str = "a70bf50e531ce1a817561f2f5d5b6645d4e806becf58ccc5e8cf6b8045a090a8";

/// A FHIR intake channel whose one destination is the mock.
fn relay(mock: &MockServer, extra: &str) -> (Setup, Server) {
    let ch = format!(
        "name: relay\nsource:\n  type: fhir\n  partners:\n    - name: a\n      token_sha256: {TOKEN_A_SHA}\ndestinations:\n  - name: ehr\n    type: fhir\n    base_url: {}/r4\n    timeout: 1s\n    retry: {{ initial: 100ms, max_delay: 1s }}\n{extra}",
        mock.uri()
    );
    let setup = Setup::new(SERVER, &[("relay.yaml", &ch)]);
    let server = Server::start(&setup);
    (setup, server)
}

fn send(server: &Server, body: &str) -> String {
    let auth = format!("Bearer {TOKEN_A}");
    let r = http_request(
        server.http(),
        "POST",
        &format!("/fhir/{}", resource_type(body)),
        &[
            ("Content-Type", "application/fhir+json"),
            ("Authorization", &auth),
        ],
        body.as_bytes(),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    r.header("content-location")
        .unwrap()
        .trim_start_matches("/api/messages/")
        .to_string()
}

fn resource_type(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["resourceType"].as_str().unwrap().to_string()
}

fn delivery(server: &Server, id: &str) -> serde_json::Value {
    let d: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["messages", "show", id, "--json"])).unwrap();
    d["deliveries"][0].clone()
}

fn wait_state(server: &Server, id: &str, state: &str) -> serde_json::Value {
    server.wait_for(30, &format!("delivery {state}"), || {
        delivery(server, id)["state"] == state
    });
    delivery(server, id)
}

const PATIENT: &str = r#"{"resourceType":"Patient","id":"p1","gender":"female"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_with_warnings_is_sent_and_kept() {
    let mock = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/r4/Patient/p1"))
        .and(header("content-type", "application/fhir+json; charset=utf-8"))
        .and(header_exists("idempotency-key"))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("Location", "/r4/Patient/p1/_history/1")
                .set_body_string(r#"{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"informational","diagnostics":"name is missing"}]}"#),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let (_s, server) = relay(&mock, "");
    let id = send(&server, PATIENT);
    let d = wait_state(&server, &id, "sent");
    let response = d["response"].as_str().unwrap();
    assert!(
        response.contains("201")
            && response.contains("Patient/p1/_history/1")
            && response.contains("warning: name is missing"),
        "{d}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_dead_with_the_servers_reasons() {
    let mock = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(400).set_body_string(
            r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"birthDate is in the future","expression":["Patient.birthDate"]}]}"#,
        ))
        .expect(1)
        .mount(&mock)
        .await;
    let (_s, server) = relay(&mock, "");
    let id = send(&server, PATIENT);
    let d = wait_state(&server, &id, "dead");
    let e = d["last_error"].as_str().unwrap();
    assert!(
        e.contains("400") && e.contains("birthDate is in the future at Patient.birthDate"),
        "{d}"
    );
    assert_eq!(d["attempts"], 1, "a 400 is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_throttling_are_retried() {
    let mock = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/r4/Patient/p1"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .and(path("/r4/Patient/p2"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(5)
        .mount(&mock)
        .await;
    let (_s, server) = relay(&mock, "");
    let a = send(&server, PATIENT);
    let b = send(&server, &PATIENT.replace("p1", "p2"));
    let da = wait_state(&server, &a, "sent");
    let db = wait_state(&server, &b, "sent");
    assert_eq!(
        (da["attempts"].as_u64(), db["attempts"].as_u64()),
        (Some(2), Some(2)),
        "{da} {db}"
    );
    let reqs = mock.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 4, "two attempts each, counted at the server");
    // (That the retry after a 429 waits for Retry-After is the retry layer's unit test.)
    let p2: Vec<_> = reqs
        .iter()
        .filter(|r| r.url.path().ends_with("/p2"))
        .collect();
    assert_eq!(p2.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_token_is_cached_and_refreshed_once_on_401() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("client_secret=s3cr%21t"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(
                r#"{"access_token":"t1","expires_in":3600,"token_type":"Bearer"}"#,
            ),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(
                r#"{"access_token":"t2","expires_in":3600,"token_type":"Bearer"}"#,
            ),
        )
        .with_priority(5)
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .and(header("authorization", "Bearer t1"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .and(header("authorization", "Bearer t2"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&mock)
        .await;
    let auth = format!(
        "    auth:\n      oauth2:\n        token_url: {}/token\n        client_id: caduceus\n        client_secret_file: secret.txt\n        scope: system/*.write\n",
        mock.uri()
    );
    let (setup, server) = {
        // The secret lives beside the channel file.
        let ch = format!(
            "name: relay\nsource:\n  type: fhir\n  partners:\n    - name: a\n      token_sha256: {TOKEN_A_SHA}\ndestinations:\n  - name: ehr\n    type: fhir\n    base_url: {}/r4\n    retry: {{ initial: 100ms, max_delay: 1s }}\n{auth}",
            mock.uri()
        );
        let setup = Setup::new(SERVER, &[("relay.yaml", &ch)]);
        std::fs::write(setup.path().join("connectors/secret.txt"), "s3cr!t\n").unwrap();
        let server = Server::start(&setup);
        (setup, server)
    };
    let a = send(&server, PATIENT);
    wait_state(&server, &a, "sent");
    let b = send(&server, &PATIENT.replace("p1", "p3"));
    wait_state(&server, &b, "sent");
    let reqs = mock.received_requests().await.unwrap();
    let tokens = reqs.iter().filter(|r| r.url.path() == "/token").count();
    let puts = reqs.iter().filter(|r| r.method.as_str() == "PUT").count();
    assert_eq!(
        tokens, 2,
        "one token, one refresh after the 401; then the cached one"
    );
    assert_eq!(
        puts, 3,
        "401, then the retry with the new token, then the second resource"
    );
    drop(setup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_times_out_and_is_retried() {
    let mock = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&mock)
        .await;
    let (_s, server) = relay(&mock, "");
    let id = send(&server, PATIENT);
    server.wait_for(30, "a timed-out attempt", || {
        let e = delivery(&server, &id)["last_error"]
            .as_str()
            .unwrap_or("")
            .to_string();
        e.contains("no answer")
    });
    assert_eq!(delivery(&server, &id)["state"], "retrying");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hl7_over_mllp_becomes_a_fhir_transaction_at_the_server() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/r4"))
        .and(body_string_contains("\"type\":\"transaction\""))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{"status":"201 Created"}}]}"#,
        ))
        .expect(1)
        .mount(&mock)
        .await;
    let ch = format!(
        "name: adt\nsource:\n  type: mllp\n  listen: mllp\nsteps:\n  - map: hl7v2-fhir-r4\ndestinations:\n  - name: ehr\n    type: fhir\n    base_url: {}/r4\n",
        mock.uri()
    );
    let setup = Setup::new(SERVER, &[("adt.yaml", &ch)]);
    copy_mappings(&setup.path().join("mappings"));
    let server = Server::start(&setup);
    let mut c = Mllp::connect(server.mllp());
    assert_eq!(
        ack_fields(&c.request(&fixture("hl7/ADT-A01-01.hl7"))).0,
        "AA"
    );
    let id = server.messages()[0]["id"].as_str().unwrap().to_string();
    let d = wait_state(&server, &id, "sent");
    assert!(
        d["response"]
            .as_str()
            .unwrap()
            .contains("1 entries: 201 Created"),
        "{d}"
    );
    let reqs = mock.received_requests().await.unwrap();
    let bundle: serde_json::Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert!(
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["resource"]["resourceType"] == "Patient")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_destination_posts_the_message_as_stored() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/inbound"))
        .and(header("content-type", "x-application/hl7-v2+er7"))
        .and(header("x-source", "caduceus"))
        .and(header("authorization", "Bearer static-token"))
        .and(header_exists("idempotency-key"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&mock)
        .await;
    let ch = format!(
        "name: hl7\nsource:\n  type: mllp\n  listen: mllp\ndestinations:\n  - name: billing\n    type: http\n    url: {}/inbound\n    headers: {{ X-Source: caduceus }}\n    auth: {{ bearer_token_file: token.txt }}\n",
        mock.uri()
    );
    let setup = Setup::new(SERVER, &[("hl7.yaml", &ch)]);
    std::fs::write(setup.path().join("connectors/token.txt"), "static-token\n").unwrap();
    let server = Server::start(&setup);
    let mut c = Mllp::connect(server.mllp());
    let msg = adt("HTTP-1");
    assert_eq!(ack_fields(&c.request(&msg)).0, "AA");
    let id = server.messages()[0]["id"].as_str().unwrap().to_string();
    let d = wait_state(&server, &id, "sent");
    assert!(d["response"].as_str().unwrap().starts_with("204"), "{d}");
    let reqs = mock.received_requests().await.unwrap();
    assert_eq!(reqs[0].body, msg, "the body is the message, byte for byte");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_backend_services_sign_the_token_request() {
    use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/auth/token"))
        .and(body_string_contains("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"access_token":"smart-1","expires_in":300,"token_type":"bearer"}"#))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .and(header("authorization", "Bearer smart-1"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&mock)
        .await;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let token_url = format!("{}/auth/token", mock.uri());
    let ch = format!(
        "name: relay\nsource:\n  type: fhir\n  partners:\n    - name: a\n      token_sha256: {TOKEN_A_SHA}\ndestinations:\n  - name: ehr\n    type: fhir\n    base_url: {}/r4\n    auth:\n      smart:\n        token_url: {token_url}\n        client_id: caduceus\n        private_key: smart.pem\n        kid: k-2026\n        scope: system/Patient.write\n",
        mock.uri()
    );
    let setup = Setup::new(SERVER, &[("relay.yaml", &ch)]);
    std::fs::write(
        setup.path().join("connectors/smart.pem"),
        key.serialize_pem(),
    )
    .unwrap();
    let server = Server::start(&setup);
    let id = send(&server, PATIENT);
    wait_state(&server, &id, "sent");

    // The assertion: ES384 over header.claims, with the claims SMART requires.
    let reqs = mock.received_requests().await.unwrap();
    let form = String::from_utf8(reqs[0].body.clone()).unwrap();
    let jwt = form
        .split('&')
        .find_map(|kv| kv.strip_prefix("client_assertion="))
        .unwrap()
        .replace("%2E", ".")
        .replace("%2D", "-")
        .replace("%5F", "_");
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    let decode = |s: &str| -> Vec<u8> {
        let val = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            _ => 63,
        };
        let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
        for c in s.bytes() {
            acc = (acc << 6) | u32::from(val(c));
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    };
    let header: serde_json::Value = serde_json::from_slice(&decode(parts[0])).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&decode(parts[1])).unwrap();
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("ES384"), Some("k-2026"))
    );
    assert_eq!(claims["iss"], "caduceus");
    assert_eq!(claims["sub"], "caduceus");
    assert_eq!(claims["aud"], token_url.as_str());
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 300);
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, key.public_key_raw())
        .verify(
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &decode(parts[2]),
        )
        .expect("the signature verifies with our public key");
    assert!(form.contains("scope=system%2FPatient.write"), "{form}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_returns_the_servers_answer_or_504() {
    let mock = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/r4/Patient/p1"))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("Location", "https://payer.example/r4/Patient/p1/_history/7")
                .insert_header("Content-Type", "application/fhir+json")
                .set_body_string(
                    r#"{"resourceType":"Patient","id":"p1","meta":{"versionId":"7"}}"#,
                ),
        )
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .and(path("/r4/Patient/p2"))
        .respond_with(ResponseTemplate::new(422).set_body_string(
            r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"business-rule","diagnostics":"no such member"}]}"#,
        ))
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .and(path("/r4/Patient/p3"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(1500)))
        .mount(&mock)
        .await;
    let ch = format!(
        "name: payer\nsource:\n  type: fhir\n  mode: sync\n  sync_timeout: 500ms\n  partners:\n    - name: a\n      token_sha256: {TOKEN_A_SHA}\ndestinations:\n  - name: payer\n    type: fhir\n    base_url: {}/r4\n    timeout: 5s\n",
        mock.uri()
    );
    let setup = Setup::new(SERVER, &[("payer.yaml", &ch)]);
    let server = Server::start(&setup);
    let auth = format!("Bearer {TOKEN_A}");
    let put = |body: &str| {
        http_request(
            server.http(),
            "POST",
            "/fhir/Patient",
            &[
                ("Content-Type", "application/fhir+json"),
                ("Authorization", &auth),
            ],
            body.as_bytes(),
        )
    };
    // The server's own answer: status, Location, body.
    let r = put(PATIENT);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some("https://payer.example/r4/Patient/p1/_history/7")
    );
    assert!(r.body.contains("\"versionId\":\"7\""), "{}", r.body);
    // A refusal is relayed too (and the delivery is dead).
    let r = put(&PATIENT.replace("p1", "p2"));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("no such member"));
    // Too slow: 504 naming the stored message; the delivery still completes.
    let r = put(&PATIENT.replace("p1", "p3"));
    assert_eq!(r.status, 504, "{}", r.body);
    let id = r
        .header("content-location")
        .unwrap()
        .trim_start_matches("/api/messages/")
        .to_string();
    assert!(r.body.contains(&format!("message {id}")), "{}", r.body);
    wait_state(&server, &id, "sent");
}
