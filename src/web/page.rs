//! The live page: the cluster as one node sees it. Nodes side by side with the groups
//! online on each (and each resource's state and failures here), the paths between this
//! node and each peer (up, one-way, down, RTT), and the last events.
//!
//! The page is rendered here, on the server, whole: it reads without JavaScript (and
//! then refreshes itself every 5 s). With JavaScript it follows the node's events
//! (server-sent events, `/events`) and re-reads the cluster section (`/view`) on each one
//! and every 2 s; with actions on, a group dragged onto another node asks `move`
//! (`POST /move` with the token the page was opened with: `/#token=...`). Nothing is
//! fetched from elsewhere: the style and the script come from the binary (`/style.css`,
//! `/app.js`), and the Content-Security-Policy allows nothing else.

use std::fmt::Write;

use super::stats::EventStats;
use crate::ctl::status::{GroupStatus, StatusReport};

/// `s` with `&`, `<`, `>`, `"` and `'` escaped for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The page's style sheet (`/style.css`).
pub const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:1em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .3em}
.bar span{margin-right:1.2em}
.ok{color:#176f2c}.bad{color:#b00020;font-weight:bold}.warn{color:#a05a00}
.nodes{display:flex;gap:1em;flex-wrap:wrap;margin:1em 0}
.node{border:2px solid #999;border-radius:6px;padding:.5em;min-width:14em;min-height:6em;background:#fff}
.node.up{border-color:#2e8b57}.node.down{border-color:#b00020;background:#fff0f0}.node.unknown{border-style:dashed}
.node h2{font-size:1.1em;margin:0 0 .4em}
.node.over{outline:3px dashed #1565c0}
.group{border:1px solid #777;border-radius:4px;padding:.3em .5em;margin:.3em 0;background:#eef4ff}
.group.online{background:#e6f6ea}.group.error{background:#ffe5e5}.group.acquiring,.group.releasing{background:#fff6d6}
.group[draggable=true]{cursor:grab}
.group ul{margin:.2em 0 0 1em;padding:0}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.15em .6em;text-align:left;border-bottom:1px solid #ddd}
.events{font-family:monospace;font-size:12px;white-space:pre-wrap}
#msg{min-height:1.2em}
";

/// The page's script (`/app.js`): live updates, and drag and drop when actions are on.
pub const SCRIPT: &str = r#"
(function(){
  var view=document.getElementById('view'), list=document.getElementById('events'),
      msg=document.getElementById('msg'), pending=false, again=false;
  var m=/token=([^&]+)/.exec(location.hash);
  if(m){try{sessionStorage.setItem('hwtoken',decodeURIComponent(m[1]));}catch(e){}
        history.replaceState(null,'',location.pathname);}
  // One read of /view at a time; an event during one asks for another after it.
  function refresh(){
    if(pending){again=true;return;} pending=true;
    var ctl=new AbortController(), timer=setTimeout(function(){ctl.abort();},5000);
    fetch('/view',{cache:'no-store',signal:ctl.signal})
      .then(function(r){if(!r.ok)throw r.status;return r.text();})
      .then(function(t){view.innerHTML=t;wire();}).catch(function(){})
      .then(function(){clearTimeout(timer);})
      .then(function(){pending=false;if(again){again=false;refresh();}});
  }
  function wire(){
    if(!document.body.dataset.actions)return;
    view.querySelectorAll('.group[draggable=true]').forEach(function(g){
      g.addEventListener('dragstart',function(e){e.dataTransfer.setData('text/plain',g.dataset.group);});
    });
    view.querySelectorAll('.node').forEach(function(n){
      n.addEventListener('dragover',function(e){e.preventDefault();n.classList.add('over');});
      n.addEventListener('dragleave',function(){n.classList.remove('over');});
      n.addEventListener('drop',function(e){
        e.preventDefault();n.classList.remove('over');
        move(e.dataTransfer.getData('text/plain'),n.dataset.node);
      });
    });
  }
  function move(group,node){
    var token=sessionStorage.getItem('hwtoken');
    if(!token){msg.textContent='No token: open this page as /#token=<the token in heartwire-web\'s token file>.';return;}
    msg.textContent='move '+group+' to '+node+'...';
    fetch('/move',{method:'POST',headers:{'X-Heartwire-Token':token,'Content-Type':'application/x-www-form-urlencoded'},
      body:'group='+encodeURIComponent(group)+'&node='+encodeURIComponent(node)})
      .then(function(r){return r.text().then(function(t){msg.textContent=(r.ok?'':'refused: ')+t;});})
      .catch(function(e){msg.textContent='move failed: '+e;});
  }
  var es=new EventSource('/events');
  es.onmessage=function(e){
    try{var r=JSON.parse(e.data);}catch(x){return;}
    var line=document.createElement('div');
    line.textContent=r.wall+' '+r.node+' '+r.event+' '+Object.keys(r.fields).map(function(k){return k+'='+r.fields[k];}).join(' ');
    list.insertBefore(line,list.firstChild);
    while(list.childNodes.length>50)list.removeChild(list.lastChild);
    refresh();
  };
  wire();
  setInterval(refresh,2000);
})();
"#;

/// The whole page. `actions`: groups may be dragged (the server checks the token).
pub fn page(status: Result<&StatusReport, &str>, stats: &EventStats, actions: bool) -> String {
    let title = status.map_or_else(
        |_| "heartwire".to_owned(),
        |s| format!("heartwire: {} on {}", s.cluster, s.node),
    );
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/style.css\">\
         <noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript></head>\
         <body{}>\n<div id=\"view\">{}</div>\n<p id=\"msg\"></p>\n<h2>Events</h2>\n\
         <div id=\"events\" class=\"events\">",
        escape(&title),
        if actions { " data-actions=\"1\"" } else { "" },
        view(status, actions)
    );
    for e in stats.recent.iter().rev() {
        let _ = write!(o, "<div>{}</div>", escape(&e.render()));
    }
    let _ = write!(
        o,
        "</div>\n<script src=\"/app.js\"></script>\n</body></html>\n"
    );
    o
}

/// The cluster section (`/view`): refreshed in place by the page's script. `status` is
/// `Err` with the control socket's path when the daemon does not answer.
pub fn view(status: Result<&StatusReport, &str>, actions: bool) -> String {
    let s = match status {
        Ok(s) => s,
        Err(socket) => {
            return format!(
                "<h1>heartwire</h1><p class=\"bad\">The node's daemon does not answer on its \
                 control socket {}: is <code>heartwire run</code> up on this node? (this page \
                 asks again by itself)</p>",
                escape(socket)
            );
        }
    };
    let mut o = String::new();
    let yes_no = |b: bool, good: &str, bad: &str| {
        if b {
            format!("<span class=\"ok\">{good}</span>")
        } else {
            format!("<span class=\"bad\">{bad}</span>")
        }
    };
    let _ = write!(
        o,
        "<h1>Cluster {} (id {})</h1>\n<div class=\"bar\"><span>seen from <b>{}</b></span>\
         <span>view {} ({})</span><span>{}</span><span>{}</span><span>{:.2} view changes/s</span>{}</div>\n",
        escape(&s.cluster),
        s.cluster_id,
        escape(&s.node),
        s.view,
        escape(&s.view_members.join(", ")),
        yes_no(s.quorate, "quorate", "NO QUORUM"),
        yes_no(s.authority, "may hold groups", "no authority"),
        s.views_per_second,
        if s.maintenance {
            "<span class=\"warn\">MAINTENANCE</span>"
        } else {
            ""
        }
    );
    o.push_str("<div class=\"nodes\">\n");
    let mut nodes = vec![(s.node.clone(), "up".to_owned(), "this node".to_owned())];
    for p in &s.peers {
        let detail = match p.config_match {
            Some(false) => "its config differs".to_owned(),
            _ => format!("restarts {}", p.restarts),
        };
        nodes.push((p.name.clone(), p.state.clone(), detail));
    }
    for (name, state, detail) in &nodes {
        let _ = write!(
            o,
            "<div class=\"node {}\" data-node=\"{}\"><h2>{} <small>{} · {}</small></h2>",
            escape(state),
            escape(name),
            escape(name),
            escape(state),
            escape(detail)
        );
        for g in s.groups.iter().filter(|g| column(g) == Some(name.as_str())) {
            group(&mut o, s, g, name, actions);
        }
        o.push_str("</div>\n");
    }
    o.push_str("</div>\n");
    let elsewhere: Vec<&GroupStatus> = s.groups.iter().filter(|g| column(g).is_none()).collect();
    if !elsewhere.is_empty() {
        o.push_str(
            "<div class=\"nodes\"><div class=\"node unknown\" data-node=\"\"><h2>Not placed</h2>",
        );
        for g in elsewhere {
            group(&mut o, s, g, "", actions);
        }
        o.push_str("</div></div>\n");
    }
    links(&mut o, s);
    o
}

/// The node a group's card sits on: where it is online, else where the view places it.
fn column(g: &GroupStatus) -> Option<&str> {
    g.online_on
        .first()
        .or(g.owner.as_ref())
        .map(String::as_str)
        .filter(|_| g.placement != "offline")
}

fn group(o: &mut String, s: &StatusReport, g: &GroupStatus, on: &str, actions: bool) {
    let here = on == s.node;
    let state = if here {
        g.state.as_str()
    } else {
        g.placement.as_str()
    };
    let _ = write!(
        o,
        "<div class=\"group {}\" data-group=\"{}\"{}><b>{}</b> {}{}{}",
        escape(state),
        escape(&g.name),
        if actions { " draggable=\"true\"" } else { "" },
        escape(&g.name),
        escape(state),
        g.pending
            .as_ref()
            .map(|p| format!(" <i>(pending: {})</i>", escape(p)))
            .unwrap_or_default(),
        if g.failed_here {
            " <span class=\"bad\">failed here</span>"
        } else {
            ""
        }
    );
    o.push_str("<ul>");
    for r in &g.resources {
        let _ = write!(
            o,
            "<li>{} <small>{}</small>",
            escape(&r.name),
            escape(&r.kind)
        );
        if here {
            let _ = write!(o, ": {}", escape(&r.state));
        }
        if r.fail_count > 0 {
            let _ = write!(
                o,
                " <span class=\"bad\">{} failure(s) here{}</span>",
                r.fail_count,
                r.last_failure
                    .as_ref()
                    .map(|f| format!(", last {}", escape(f)))
                    .unwrap_or_default()
            );
        }
        o.push_str("</li>");
    }
    o.push_str("</ul></div>");
}

/// Paths between this node and each peer.
fn links(o: &mut String, s: &StatusReport) {
    o.push_str(
        "<h2>Paths</h2><table><tr><th>peer</th><th>path</th><th>network</th><th>state</th>\
         <th>RTT</th><th>jitter</th><th>received</th><th>lost</th></tr>\n",
    );
    for p in &s.peers {
        for l in &p.links {
            let network = s
                .paths
                .iter()
                .find(|q| q.name == l.path)
                .and_then(|q| q.network.clone())
                .unwrap_or_default();
            let state = match (l.state.as_str(), l.peer_hears_us) {
                ("up", Some(false)) => {
                    "<span class=\"warn\">one-way (it does not hear us)</span>".to_owned()
                }
                ("up", _) => "<span class=\"ok\">up</span>".to_owned(),
                ("down", _) => "<span class=\"bad\">down</span>".to_owned(),
                (other, _) => escape(other),
            };
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{state}</td><td>{}</td><td>{:.1} µs</td><td>{}</td><td>{}</td></tr>",
                escape(&p.name),
                escape(&l.path),
                escape(&network),
                l.rtt_us
                    .map_or_else(|| "-".to_owned(), |r| format!("{r:.1} µs")),
                l.jitter_us,
                l.received,
                l.lost
            );
        }
    }
    o.push_str("</table>\n");
}
