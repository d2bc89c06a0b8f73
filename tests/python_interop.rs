//! Interop with an MLLP client we did not write: python's `hl7` package
//! (`mllp_send` and its asyncio client), installed into `.venv` by `.ci/run`.

mod common;

use std::process::Command;

use common::*;

#[test]
fn python_mllp_send_and_asyncio_client() {
    let py = python_with("hl7, hl7.mllp");
    if !require(
        "python with the `hl7` package (.venv, made by .ci/run)",
        py.is_some(),
    ) {
        return;
    }
    let py = py.unwrap();
    let setup = Setup::default_config();
    let server = Server::start_with(&setup, &["--listen", "mllp=127.0.0.1:0"]);
    let port = server.mllp().port().to_string();

    // mllp_send (the console script) with LF line ends, --loose.
    let mllp_send = py.parent().unwrap().join("mllp_send");
    let out = Command::new(&mllp_send)
        .args(["--port", &port, "--loose", "--file"])
        .arg(repo().join("fixtures/hl7/ADT-A01-01.hl7"))
        .arg("127.0.0.1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    assert!(printed.contains("MSA|AA|MSG00001"), "{printed}");

    // The asyncio client, three messages on one connection, ACKs parsed by hl7.
    let script = format!(
        r#"
import asyncio, hl7
from hl7.mllp import open_hl7_connection
async def main():
    reader, writer = await open_hl7_connection("127.0.0.1", {port})
    for i in range(3):
        msg = hl7.parse("MSH|^~\\&|PY|PYFAC|CAD|CAD|20240101||ADT^A04^ADT_A01|PY-%d|P|2.5.1\rPID|1||%d^^^PY^MR||Py^Thon\r" % (i, i))
        writer.writemessage(msg)
        await writer.drain()
        ack = await asyncio.wait_for(reader.readmessage(), 10)
        print(str(ack.segment("MSA")[1]), str(ack.segment("MSA")[2]))
    writer.close()
asyncio.run(main())
"#
    );
    let out = Command::new(&py).args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "AA PY-0\nAA PY-1\nAA PY-2\n"
    );
    let ids: Vec<String> = server
        .messages()
        .iter()
        .map(|m| m["control_id"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(ids, ["PY-2", "PY-1", "PY-0", "MSG00001"]);
}
