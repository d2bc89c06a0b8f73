//! Test harness: runs `caduceus serve` as a child process on port 0 with a
//! temporary data directory, and talks to it over real sockets.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_caduceus");
pub const VT: u8 = 0x0B;
pub const FS: u8 = 0x1C;
pub const CR: u8 = 0x0D;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(repo().join("fixtures").join(rel))
        .unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

/// A test that needs an outside tool or service: fail when it is missing,
/// unless CADUCEUS_ALLOW_SKIP=1 (then print a visible skip and return false).
pub fn require(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    if std::env::var("CADUCEUS_ALLOW_SKIP").as_deref() == Ok("1") {
        eprintln!("SKIPPED: {what} is not available (CADUCEUS_ALLOW_SKIP=1)");
        return false;
    }
    panic!("{what} is not available; run .ci/run (or set CADUCEUS_ALLOW_SKIP=1 for a local run)");
}

/// A config folder with a server file and channel files.
pub struct Setup {
    pub dir: tempfile::TempDir,
}

impl Setup {
    /// `server` is the body of config/caduceus.yaml (listeners are overridden
    /// to port 0 at start); `channels` are (file name, body).
    pub fn new(server: &str, channels: &[(&str, &str)]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::create_dir_all(dir.path().join("connectors")).unwrap();
        std::fs::write(dir.path().join("config/caduceus.yaml"), server).unwrap();
        for (name, body) in channels {
            std::fs::write(dir.path().join("connectors").join(name), body).unwrap();
        }
        Setup { dir }
    }

    /// The repository's own default config, with a temporary data directory.
    pub fn default_config() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        Setup { dir }
    }

    pub fn config(&self) -> PathBuf {
        let own = self.dir.path().join("config/caduceus.yaml");
        if own.exists() {
            own
        } else {
            repo().join("config/caduceus.yaml")
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

pub const SERVER: &str = "listeners:\n  http: 127.0.0.1:0\n  mllp: 127.0.0.1:0\nlog:\n  level: info\nshutdown_grace: 5s\n";

/// A running `caduceus serve`.
pub struct Server {
    pub child: Child,
    pub config: PathBuf,
    pub data: PathBuf,
    pub ports: serde_json::Map<String, serde_json::Value>,
    pub log: PathBuf,
    extra: Vec<String>,
}

impl Server {
    pub fn start(setup: &Setup) -> Server {
        Self::start_with(setup, &[])
    }

    pub fn start_with(setup: &Setup, extra: &[&str]) -> Server {
        let mut s = Server {
            child: spawn_dummy(),
            config: setup.config(),
            data: setup.data(),
            ports: Default::default(),
            log: setup.path().join(format!("serve-{}.log", fastrand_u64())),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.data.join("ports.json"));
        self.log = self
            .data
            .parent()
            .unwrap()
            .join(format!("serve-{}.log", fastrand_u64()));
        let log = std::fs::File::create(&self.log).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.data)
            .arg("serve")
            .arg("--listen")
            .arg("http=127.0.0.1:0")
            .env_remove("CADUCEUS_LISTEN")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        if self.config == repo().join("config/caduceus.yaml") {
            // The bundled config's fixed ports: tests run side by side.
            cmd.arg("--listen").arg("mllp-fhir=127.0.0.1:0");
        }
        for e in &self.extra {
            cmd.arg(e);
        }
        self.child = cmd.spawn().expect("spawn caduceus serve");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "serve exited early ({status}):\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if let Ok(text) = std::fs::read_to_string(self.data.join("ports.json"))
                && let Ok(serde_json::Value::Object(m)) = serde_json::from_str(&text)
            {
                self.ports = m;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not start:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn addr(&self, name: &str) -> SocketAddr {
        self.ports
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("no listener {name} in ports.json: {:?}", self.ports))
            .parse()
            .unwrap()
    }

    pub fn mllp(&self) -> SocketAddr {
        self.addr("mllp")
    }

    pub fn http(&self) -> SocketAddr {
        self.addr("http")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs a CLI command against this server's data directory.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .output()
            .expect("run caduceus")
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        assert!(
            o.status.success(),
            "caduceus {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// `messages list --all --json`, parsed.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        self.cli_ok(&["messages", "list", "--all", "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn http_get(&self, path: &str) -> (u16, String) {
        http_get(self.http(), path)
    }

    /// Waits until `f` holds, up to `secs`.
    pub fn wait_for(&self, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n--- log ---\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_dummy() -> Child {
    Command::new("true").spawn().unwrap()
}

fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish()
}

pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Reads a metric's value from /metrics text (first line matching all labels).
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

pub fn frame(msg: &[u8]) -> Vec<u8> {
    let mut v = vec![VT];
    v.extend_from_slice(msg);
    v.extend_from_slice(&[FS, CR]);
    v
}

/// A blocking MLLP client.
pub struct Mllp {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Mllp {
    pub fn connect(addr: SocketAddr) -> Mllp {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Mllp {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn from_stream(stream: TcpStream) -> Mllp {
        Mllp {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn send(&mut self, msg: &[u8]) {
        self.send_raw(&frame(msg));
    }

    /// Reads one frame; None on EOF or timeout.
    pub fn read(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(start) = self.buf.iter().position(|&b| b == VT)
                && let Some(end) = self.buf[start..].iter().position(|&b| b == FS)
            {
                let msg = self.buf[start + 1..start + end].to_vec();
                let mut cut = start + end + 1;
                if self.buf.get(cut) == Some(&CR) {
                    cut += 1;
                }
                self.buf.drain(..cut);
                return Some(msg);
            }
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    pub fn request(&mut self, msg: &[u8]) -> Vec<u8> {
        self.send(msg);
        self.read().expect("an ACK")
    }
}

/// MSA-1 and MSA-2 (and ERR-3.1) of an ACK.
pub fn ack_fields(ack: &[u8]) -> (String, String, String) {
    let text = String::from_utf8_lossy(ack).into_owned();
    let seg = |id: &str| {
        text.split('\r')
            .find(|s| s.starts_with(id))
            .map(|s| s.to_string())
            .unwrap_or_default()
    };
    let msa = seg("MSA");
    let f: Vec<&str> = msa.split('|').collect();
    let err = seg("ERR");
    let e: Vec<&str> = err.split('|').collect();
    let code = e
        .get(3)
        .map(|c| c.split('^').next().unwrap_or("").to_string())
        .unwrap_or_default();
    let old = e
        .get(1)
        .and_then(|c| c.split('^').nth(3))
        .map(|c| c.split('&').next().unwrap_or("").to_string())
        .unwrap_or_default();
    (
        f.get(1).unwrap_or(&"").to_string(),
        f.get(2).unwrap_or(&"").to_string(),
        if code.is_empty() { old } else { code },
    )
}

/// A message with a given control id (and optional extra MSH fields after MSH-12).
pub fn adt(control: &str) -> Vec<u8> {
    format!("MSH|^~\\&|TESTAPP|TESTFAC|CAD|CAD|20240501120000||ADT^A01^ADT_A01|{control}|P|2.5.1\rEVN|A01|20240501120000\rPID|1||{control}^^^TEST^MR||Doe^Jane||19800101|F\r").into_bytes()
}

/// What a receiver got, with arrival times.
pub type Received = Arc<Mutex<Vec<(Instant, Vec<u8>)>>>;

/// A test MLLP receiver that records messages and answers with a code.
pub struct Receiver {
    pub addr: SocketAddr,
    pub received: Received,
    pub code: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    pub fn start() -> Receiver {
        Self::bind("127.0.0.1:0")
    }

    pub fn bind(addr: &str) -> Receiver {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let code = Arc::new(Mutex::new("AA".to_string()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, c, s) = (received.clone(), code.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (r, c, s) = (r.clone(), c.clone(), s.clone());
                        std::thread::spawn(move || serve_receiver(stream, r, c, s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Receiver {
            addr,
            received,
            code,
            stop,
        }
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    pub fn control_ids(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, m)| {
                hl7v2::Message::parse(m)
                    .map(|p| p.control_id().into_owned())
                    .unwrap_or_default()
            })
            .collect()
    }

    pub fn set_code(&self, code: &str) {
        *self.code.lock().unwrap() = code.to_string();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve_receiver(
    stream: TcpStream,
    received: Received,
    code: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
) {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut c = Mllp {
        stream,
        buf: Vec::new(),
    };
    while !stop.load(Ordering::SeqCst) {
        let Some(msg) = c.read() else {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            // read timeout: keep waiting; EOF: the peek tells.
            let mut probe = [0u8; 1];
            match c.stream.peek(&mut probe) {
                Ok(0) => return,
                _ => continue,
            }
        };
        let control = hl7v2::Message::parse(&msg)
            .map(|m| m.control_id().into_owned())
            .unwrap_or_default();
        let code = code.lock().unwrap().clone();
        received.lock().unwrap().push((Instant::now(), msg));
        let ack = format!(
            "MSH|^~\\&|RCV|RCV|CAD|CAD|20240101||ACK^A01^ACK|R{control}|P|2.5.1\rMSA|{code}|{control}\r"
        );
        if c.stream.write_all(&frame(ack.as_bytes())).is_err() {
            return;
        }
    }
}

/// The venv's python (or `CADUCEUS_PYTHON`), when it can import `module`.
#[allow(dead_code)]
pub fn python_with(module: &str) -> Option<PathBuf> {
    let p = std::env::var_os("CADUCEUS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    let ok = Command::new(&p)
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok.then_some(p)
}

/// Copies the shipped `mappings/` (without its test cases) to `to`.
#[allow(dead_code)]
pub fn copy_mappings(to: &Path) {
    fn walk(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_owned();
            if p.is_dir() {
                if name != "tests" {
                    walk(&p, &to.join(name));
                }
            } else {
                std::fs::copy(&p, to.join(name)).unwrap();
            }
        }
    }
    walk(&repo().join("mappings"), to);
}

/// An HTTP response, read whole.
#[allow(dead_code)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[allow(dead_code)]
impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request on a fresh connection.
#[allow(dead_code)]
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) before reading the whole body.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: body.to_string(),
    }
}

/// A development certificate set under `dir`: `ca`, `server` (localhost,
/// 127.0.0.1), `partner-a`, `partner-b`, `expired` (partner-a, expired),
/// `stranger` (partner-a from another CA) and `other-ca`. Each as NAME.pem and
/// NAME.key.
#[allow(dead_code)]
pub fn dev_certs(dir: &Path) -> caduceus::tls::dev::DevCa {
    use caduceus::tls::dev::{DevCa, write_pair};
    let ca = DevCa::new("test CA").unwrap();
    write_pair(dir, "ca", &ca.pem()).unwrap();
    write_pair(
        dir,
        "server",
        &ca.server(&["localhost", "127.0.0.1"]).unwrap(),
    )
    .unwrap();
    write_pair(dir, "partner-a", &ca.client("partner-a").unwrap()).unwrap();
    write_pair(dir, "partner-b", &ca.client("partner-b").unwrap()).unwrap();
    write_pair(dir, "expired", &ca.expired_client("partner-a").unwrap()).unwrap();
    let other = DevCa::new("someone else's CA").unwrap();
    write_pair(dir, "other-ca", &other.pem()).unwrap();
    write_pair(dir, "stranger", &other.client("partner-a").unwrap()).unwrap();
    ca
}

/// Runs the binary in the repository root with `args`.
#[allow(dead_code)]
pub fn caduceus(args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(repo())
        .args(args)
        .output()
        .expect("run caduceus")
}
