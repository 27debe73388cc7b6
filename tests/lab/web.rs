//! `heartwire-web` in the lab: the web process in a node's namespace, requests made
//! there with curl, and headless Chromium driven over WebDriver (tests/web.rs,
//! benches/web.rs).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::Lab;

pub const PORT: u16 = 9797;

pub fn web_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_heartwire-web"))
}

/// Starts `heartwire-web` for node `i` inside its namespace; returns the helper index.
pub fn start_web(lab: &mut Lab, i: usize, extra: &[&str]) -> usize {
    let log = lab.dir.join(format!("web-{i}.log"));
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.ns(i)])
        .arg(web_binary())
        .arg("--listen")
        .arg(format!("127.0.0.1:{PORT}"))
        .arg("--socket")
        .arg(lab.socket(i))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn heartwire-web");
    let h = lab.adopt_helper(child);
    lab.wait_for(Duration::from_secs(10), "heartwire-web answers", |lab| {
        http(lab, i, "GET", "/metrics", &[], "").0 == 200
    });
    h
}

/// One request from inside node `i`'s namespace: (status, body).
pub fn http(
    lab: &Lab,
    i: usize,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> (u16, String) {
    let mut c = Command::new("ip");
    c.args([
        "netns",
        "exec",
        &lab.ns(i),
        "curl",
        "-s",
        "-S",
        "--max-time",
        "40",
    ])
    .args(["-X", method, "-o", "-", "-w", "\n%{http_code}"]);
    for h in headers {
        c.args(["-H", h]);
    }
    if !body.is_empty() {
        c.args(["--data", body]);
    }
    let out = c
        .arg(format!("http://127.0.0.1:{PORT}{path}"))
        .output()
        .expect("curl (Debian package curl; make deps installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

pub const DRIVER_PORT: u16 = 9515;

/// A WebDriver request to the chromedriver in namespace `ns`.
pub fn webdriver(
    ns: &str,
    method: &str,
    path: &str,
    body: &serde_json::Value,
) -> serde_json::Value {
    let url = format!("http://127.0.0.1:{DRIVER_PORT}{path}");
    let mut c = Command::new("ip");
    c.args([
        "netns",
        "exec",
        ns,
        "curl",
        "-s",
        "-S",
        "--max-time",
        "60",
        "-X",
        method,
    ]);
    if method == "POST" {
        c.args([
            "-H",
            "Content-Type: application/json",
            "--data",
            &body.to_string(),
        ]);
    }
    let out = c.arg(url).output().expect("curl");
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// Headless Chromium, driven by chromedriver (Debian's chromium and chromium-driver),
/// inside one node's namespace. chromedriver runs as PID 1 of a PID namespace of its own
/// (`unshare --pid --kill-child`): when the lab kills it, the kernel takes every browser
/// process with it.
pub struct Browser {
    ns: String,
    session: String,
}

impl Browser {
    pub fn start(lab: &mut Lab, node: usize) -> Browser {
        let ns = lab.ns(node);
        let log = lab.dir.join("chromedriver.log");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns])
            .args(["unshare", "--pid", "--fork", "--kill-child", "chromedriver"])
            .arg(format!("--port={DRIVER_PORT}"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver; make deps installs it)");
        lab.adopt_helper(child);
        lab.wait_for(Duration::from_secs(10), "chromedriver is ready", |_| {
            webdriver(&ns, "GET", "/status", &serde_json::Value::Null)["value"]["ready"] == true
        });
        let profile = lab.dir.join("chromium-profile");
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": "/usr/lib/chromium/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1100,760", format!("--user-data-dir={}", profile.display())]
        }}}});
        let v = webdriver(&ns, "POST", "/session", &caps);
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {v}"))
            .to_owned();
        Browser { ns, session }
    }

    fn call(&self, method: &str, what: &str, body: &serde_json::Value) -> serde_json::Value {
        let path = format!("/session/{}{what}", self.session);
        webdriver(&self.ns, method, &path, body)["value"].clone()
    }

    pub fn go(&self, url: &str) {
        self.call("POST", "/url", &serde_json::json!({ "url": url }));
    }

    pub fn js(&self, script: &str) -> serde_json::Value {
        self.call(
            "POST",
            "/execute/sync",
            &serde_json::json!({ "script": script, "args": [] }),
        )
    }

    /// Whether the page shows group `group` on node `node`'s card.
    pub fn shows(&self, group: &str, node: &str) -> bool {
        self.js(&format!(
            "return !!document.querySelector('.node[data-node=\"{node}\"] .group[data-group=\"{group}\"]')"
        )) == true
    }

    /// Drags group `group`'s card onto node `node`'s, as the mouse would: the page's own
    /// drag and drop handlers run (WebDriver's pointer actions do not start an HTML5 drag
    /// in Chromium).
    pub fn drag(&self, group: &str, node: &str) {
        self.js(&format!(
            "var g=document.querySelector('.group[data-group=\"{group}\"]'),\
                 n=document.querySelector('.node[data-node=\"{node}\"]'), dt=new DataTransfer();\
             g.dispatchEvent(new DragEvent('dragstart',{{dataTransfer:dt,bubbles:true}}));\
             n.dispatchEvent(new DragEvent('dragover',{{dataTransfer:dt,bubbles:true,cancelable:true}}));\
             n.dispatchEvent(new DragEvent('drop',{{dataTransfer:dt,bubbles:true,cancelable:true}}));"
        ));
    }

    pub fn text(&self, selector: &str) -> String {
        self.js(&format!(
            "return document.querySelector('{selector}').textContent"
        ))
        .as_str()
        .unwrap_or("")
        .to_owned()
    }

    pub fn screenshot(&self, file: &Path) {
        use std::io::Write;
        let png = self.call("GET", "/screenshot", &serde_json::Value::Null);
        let mut c = Command::new("base64")
            .arg("-d")
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(file).unwrap())
            .spawn()
            .unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(png.as_str().unwrap_or("").as_bytes())
            .unwrap();
        assert!(c.wait().unwrap().success(), "a PNG screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.call("DELETE", "", &serde_json::Value::Null);
    }
}

/// Where screenshots are kept: `target/artifacts/`.
pub fn artifact(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}
