//! `heartwire-web` against real daemons in the netns lab (issue 20): `/metrics` checked by
//! Prometheus's own `promtool check metrics` before and after a takeover, the page, and
//! the `move` action with and without its token. The web process runs inside node b's
//! namespace on its loopback; the requests are made there with curl.

mod lab;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use lab::{Lab, LabConfig};

const PORT: u16 = 9797;

fn web_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_heartwire-web"))
}

fn group(name: &str) -> String {
    format!(
        "[[group]]\nname = \"{name}\"\nnodes = [\"a\", \"b\"]\nstartup = \"home\"\nfallover = \"next\"\nfallback = \"never\"\n\n\
         [[group.resource]]\nname = \"vip\"\nkind = \"ip\"\naddress = \"10.200.1.50/24\"\ninterface = \"eth1\"\nannounce_count = 1\n\n"
    )
}

/// Starts `heartwire-web` for node `i` inside its namespace; returns the helper index.
fn start_web(lab: &mut Lab, i: usize, extra: &[&str]) -> usize {
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
fn http(
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

/// `promtool check metrics` on `text`: its verdict (empty when it found nothing).
fn promtool(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut c = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; make deps installs it)");
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(said)
    }
}

/// The value of the sample `series` (name and labels exactly as exposed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn scrape(lab: &Lab, i: usize) -> String {
    let (code, text) = http(lab, i, "GET", "/metrics", &[], "");
    assert_eq!(code, 200, "{text}");
    if let Err(e) = promtool(&text) {
        panic!("promtool check metrics refused the exposition:\n{e}\n{text}");
    }
    text
}

#[test]
fn metrics_pass_promtool_and_follow_a_takeover() {
    let cfg = LabConfig {
        two_node: true,
        extra: group("svc"),
        ..LabConfig::default()
    };
    let mut lab = Lab::new("web", 2, &cfg);
    lab.start_all();
    lab.wait_group(0, "svc", "online", Duration::from_secs(10));
    start_web(&mut lab, 1, &[]);
    lab.wait_for(Duration::from_secs(5), "b sees a up", |lab| {
        let t = http(lab, 1, "GET", "/metrics", &[], "").1;
        sample(&t, "heartwire_peer_up{peer=\"a\"}") == Some(1.0)
    });
    let before = scrape(&lab, 1);
    for (series, value) in [
        ("heartwire_up", 1.0),
        ("heartwire_quorate", 1.0),
        ("heartwire_peer_up{peer=\"a\"}", 1.0),
        ("heartwire_link_up{peer=\"a\",path=\"e1\"}", 1.0),
        (
            "heartwire_group_state{group=\"svc\",state=\"offline\"}",
            1.0,
        ),
        ("heartwire_group_state{group=\"svc\",state=\"online\"}", 0.0),
        ("heartwire_group_online_on{group=\"svc\",node=\"a\"}", 1.0),
        ("heartwire_detection_seconds_count", 0.0),
    ] {
        assert_eq!(sample(&before, series), Some(value), "{series}:\n{before}");
    }
    assert!(
        sample(
            &before,
            "heartwire_link_rtt_seconds{peer=\"a\",path=\"e1\"}"
        )
        .is_some_and(|r| r > 0.0 && r < 0.1),
        "an RTT in seconds:\n{before}"
    );

    lab.kill(0);
    lab.wait_group(1, "svc", "online", Duration::from_secs(5));
    lab.wait_for(
        Duration::from_secs(5),
        "the web process saw the takeover",
        |lab| {
            let t = http(lab, 1, "GET", "/metrics", &[], "").1;
            sample(&t, "heartwire_failover_seconds_count") == Some(1.0)
        },
    );
    let after = scrape(&lab, 1);
    for (series, value) in [
        ("heartwire_peer_up{peer=\"a\"}", 0.0),
        ("heartwire_group_state{group=\"svc\",state=\"online\"}", 1.0),
        (
            "heartwire_resource_state{group=\"svc\",resource=\"vip\",kind=\"ip\",state=\"started\"}",
            1.0,
        ),
        ("heartwire_group_online_total{group=\"svc\"}", 1.0),
        ("heartwire_detection_seconds_count", 1.0),
        ("heartwire_events_total{event=\"node_down\"}", 1.0),
    ] {
        assert_eq!(sample(&after, series), Some(value), "{series}:\n{after}");
    }
    let detection = sample(&after, "heartwire_detection_seconds_sum").unwrap();
    assert!(
        detection > 0.0 && detection < 1.0,
        "the lab's 1 ms / 10 ms profile detects in milliseconds: {detection} s"
    );

    // The page: both nodes, the group on b, the path table; read-only.
    let (code, page) = http(&lab, 1, "GET", "/", &[], "");
    assert_eq!(code, 200);
    for needle in [
        "data-node=\"a\"",
        "data-node=\"b\"",
        "data-group=\"svc\"",
        "node_down",
    ] {
        assert!(page.contains(needle), "the page lacks {needle}:\n{page}");
    }
    assert!(
        !page.contains("draggable=\"true\""),
        "read-only: nothing to drag"
    );
    let (code, said) = http(&lab, 1, "POST", "/move", &[], "group=svc&node=a");
    assert_eq!(code, 403, "{said}");
    assert!(said.contains("actions are off"), "{said}");
    assert_eq!(http(&lab, 1, "GET", "/nothing", &[], "").0, 404);
    assert_eq!(http(&lab, 1, "DELETE", "/metrics", &[], "").0, 405);

    // Its daemon gone: heartwire_up 0, still a valid exposition.
    lab.kill(1);
    let down = scrape(&lab, 1);
    assert_eq!(sample(&down, "heartwire_up"), Some(0.0), "{down}");
}

#[test]
fn a_move_from_the_web_needs_actions_and_the_token() {
    let cfg = LabConfig {
        two_node: true,
        extra: group("svc"),
        ..LabConfig::default()
    };
    let mut lab = Lab::new("webmv", 2, &cfg);
    lab.start_all();
    lab.wait_group(0, "svc", "online", Duration::from_secs(10));
    let token_file = lab.dir.join("web.token");
    start_web(
        &mut lab,
        1,
        &[
            "--actions",
            "--token-file",
            &token_file.display().to_string(),
        ],
    );
    let token = std::fs::read_to_string(&token_file).expect("a new token was written");
    let token = token.trim();
    assert_eq!(mode(&token_file), 0o600, "the token file is private");
    let (_, page) = http(&lab, 1, "GET", "/", &[], "");
    assert!(page.contains("draggable=\"true\""), "groups can be dragged");

    let (code, said) = http(
        &lab,
        1,
        "POST",
        "/move",
        &["X-Heartwire-Token: wrong-token-0123456789"],
        "group=svc&node=b",
    );
    assert_eq!(code, 403, "{said}");
    let (code, said) = http(&lab, 1, "POST", "/move", &[], "group=svc&node=b");
    assert_eq!(code, 403, "{said}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        lab.group_state(0, "svc").as_deref(),
        Some("online"),
        "nothing moved"
    );

    let auth = format!("X-Heartwire-Token: {token}");
    let (code, said) = http(
        &lab,
        1,
        "POST",
        "/move",
        &[&auth, "Origin: http://evil.example"],
        "group=svc&node=b",
    );
    assert_eq!(code, 403, "another site's page: {said}");
    let (code, said) = http(&lab, 1, "POST", "/move", &[&auth], "group=svc&node=nobody");
    assert!(code >= 400, "a node that does not exist: {code} {said}");
    let (code, said) = http(&lab, 1, "POST", "/move", &[&auth], "group=svc&node=b");
    assert_eq!(code, 200, "{said}");
    lab.wait_group(1, "svc", "online", Duration::from_secs(5));
    assert_eq!(lab.group_state(0, "svc").as_deref(), Some("offline"));

    // A token file others can read is refused at start.
    let open = lab.dir.join("open.token");
    std::fs::write(&open, "0123456789abcdef0123\n").unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = Command::new(web_binary())
        .args(["--actions", "--token-file"])
        .arg(&open)
        .args(["--socket", "/nonexistent", "--listen", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chmod 600"),
        "{out:?}"
    );
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().mode() & 0o777
}
