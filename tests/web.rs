//! `heartwire-web` against real daemons in the netns lab (issue 20): `/metrics` checked by
//! Prometheus's own `promtool check metrics` before and after a takeover, the page, the
//! `move` action with and without its token, and the page in headless Chromium following
//! a takeover and moving the group back by drag and drop (screenshots kept in
//! `target/artifacts/`). The web process runs inside node b's namespace on its loopback;
//! the requests are made there (curl, chromedriver).

mod lab;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use lab::web::{Browser, PORT, artifact, http, start_web, web_binary};
use lab::{Lab, LabConfig};

fn group(name: &str) -> String {
    format!(
        "[[group]]\nname = \"{name}\"\nnodes = [\"a\", \"b\"]\nstartup = \"home\"\nfallover = \"next\"\nfallback = \"never\"\n\n\
         [[group.resource]]\nname = \"vip\"\nkind = \"ip\"\naddress = \"10.200.1.50/24\"\ninterface = \"eth1\"\nannounce_count = 1\n\n"
    )
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

/// A two-node lab (prefix `tag`) with group `svc` online on a, and heartwire-web on b:
/// read-only, or with `--actions` and a token file (then returns its token).
fn lab_with_web(tag: &str, actions: bool) -> (Lab, Option<String>) {
    let cfg = LabConfig {
        two_node: true,
        extra: group("svc"),
        ..LabConfig::default()
    };
    let mut lab = Lab::new(tag, 2, &cfg);
    lab.start_all();
    lab.wait_group(0, "svc", "online", Duration::from_secs(10));
    if !actions {
        start_web(&mut lab, 1, &[]);
        return (lab, None);
    }
    let token_file = lab.dir.join("web.token");
    let file = token_file.display().to_string();
    start_web(&mut lab, 1, &["--actions", "--token-file", &file]);
    let token = std::fs::read_to_string(&token_file).expect("a new token was written");
    assert_eq!(mode(&token_file), 0o600, "the token file is private");
    (lab, Some(token.trim().to_owned()))
}

#[test]
fn metrics_pass_promtool_and_follow_a_takeover() {
    let (mut lab, _) = lab_with_web("web", false);
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
    readme_lists_every_family(&after);
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
    // DNS rebinding: a page of another name pointed at 127.0.0.1 is not answered.
    let (code, said) = http(
        &lab,
        1,
        "GET",
        "/status.json",
        &["Host: rebound.example:9797"],
        "",
    );
    assert_eq!(code, 403, "{said}");
    assert_eq!(
        http(
            &lab,
            1,
            "GET",
            "/status.json",
            &["Host: localhost:9797"],
            ""
        )
        .0,
        200
    );
    assert_eq!(http(&lab, 1, "DELETE", "/metrics", &[], "").0, 405);

    // Its daemon gone: heartwire_up 0 (once the shared status report, at most 250 ms
    // old, is asked for again), still a valid exposition.
    lab.kill(1);
    lab.wait_for(Duration::from_secs(5), "heartwire_up 0", |lab| {
        sample(&http(lab, 1, "GET", "/metrics", &[], "").1, "heartwire_up") == Some(0.0)
    });
    let down = scrape(&lab, 1);
    assert_eq!(sample(&down, "heartwire_up"), Some(0.0), "{down}");
}

#[test]
fn a_move_from_the_web_needs_actions_and_the_token() {
    let (lab, token) = lab_with_web("webmv", true);
    let token = token.as_deref().unwrap();
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

/// The README's `metrics` block names every family of the exposition with its type, and
/// nothing else.
fn readme_lists_every_family(exposition: &str) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = readme
        .split("```metrics\n")
        .nth(1)
        .expect("README has a metrics block");
    let block = &block[..block.find("```").unwrap()];
    let documented: std::collections::BTreeMap<&str, &str> = block
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap(), w.next().expect("a type"))
        })
        .collect();
    let exposed: std::collections::BTreeMap<&str, &str> = exposition
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("# TYPE heartwire_")?;
            rest.split_once(' ')
        })
        .collect();
    assert_eq!(documented, exposed, "README metrics block vs /metrics");
}

#[test]
fn the_page_in_a_browser_follows_a_takeover_and_moves_the_group_back() {
    let (mut lab, token) = lab_with_web("webui", true);
    let token = token.unwrap();
    let browser = Browser::start(&mut lab, 1);
    browser.go(&format!("http://127.0.0.1:{PORT}/#token={token}"));
    lab.wait_for(Duration::from_secs(10), "the page shows svc on a", |_| {
        browser.shows("svc", "a")
    });
    assert_eq!(
        browser.js("return document.querySelectorAll('.node').length"),
        2
    );
    assert!(
        browser.text("h1").contains("Cluster"),
        "{}",
        browser.text("h1")
    );

    // Kill the owner; the page (not reloaded) shows the group on b.
    let killed = std::time::Instant::now();
    lab.kill(0);
    lab.wait_for(Duration::from_secs(10), "the page shows svc on b", |_| {
        browser.shows("svc", "b")
    });
    eprintln!(
        "kill -9 of a's daemon -> svc on b on the page: {:?} (WebDriver polls included)",
        killed.elapsed()
    );
    lab.wait_group(1, "svc", "online", Duration::from_secs(1));
    lab.wait_for(Duration::from_secs(5), "the page shows a down", |_| {
        browser.js("return document.querySelector('.node[data-node=\"a\"]').className")
            == "node down"
    });
    browser.screenshot(&artifact("web-takeover.png"));

    // a comes back (fallback never: svc stays on b); drag it to a.
    lab.start(0);
    lab.wait_for(Duration::from_secs(10), "the page shows a up", |_| {
        browser.js("return document.querySelector('.node[data-node=\"a\"]').className") == "node up"
    });
    browser.drag("svc", "a");
    lab.wait_group(0, "svc", "online", Duration::from_secs(10));
    lab.wait_for(
        Duration::from_secs(5),
        "the page shows svc on a again",
        |_| browser.shows("svc", "a"),
    );
    lab.wait_for(
        Duration::from_secs(5),
        "the page says the move is done",
        |_| browser.text("#msg").contains("done"),
    );
    browser.screenshot(&artifact("web-moved-back.png"));
}
