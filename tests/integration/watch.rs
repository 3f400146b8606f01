//! Watching a fleet: sessions that open, close (ForceClose), a server that gains sessions, a
//! host that goes away and comes back; a store that resumes a watch where the last one stopped.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use winrm_sessions::classes::SmbSession;
use winrm_sessions::fleet::{Fleet, RetryPolicy};
use winrm_sessions::testing::{ConnectionStats, FixtureServer, FixtureSet};
use winrm_sessions::watch::store::{HistoryFilter, Store};
use winrm_sessions::watch::{Change, Watch, WatchEvent};
use winrm_sessions::{Auth, Client, Credentials};

use crate::support::basic_client;
use crate::support::scripted::live_server;

fn fleet(url: &str) -> Fleet {
    Fleet::from_client(basic_client(url))
        .retry(RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        })
        .per_host_deadline(Duration::from_secs(5))
}

/// What one poll of every host reported: (target index, change, session id) and the targets
/// whose poll failed.
#[derive(Debug, Default, PartialEq)]
struct Round {
    changes: BTreeSet<(usize, &'static str, u64)>,
    failed: BTreeSet<usize>,
}

async fn round<S>(events: &mut S, targets: &[&str]) -> Round
where
    S: futures_util::Stream<Item = WatchEvent<SmbSession>> + Unpin,
{
    let mut round = Round::default();
    let mut polled = 0;
    while polled < targets.len() {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("the watch polls on time")
            .expect("the watch goes on");
        let index = |target: &str| targets.iter().position(|t| *t == target).unwrap();
        match event {
            WatchEvent::Session(e) => {
                let change = match e.change {
                    Change::Present => "present",
                    Change::Opened => "opened",
                    Change::Closed => "closed",
                    _ => "unchanged",
                };
                round
                    .changes
                    .insert((index(&e.target), change, e.session.session_id));
            }
            WatchEvent::Polled(poll) => {
                polled += 1;
                if poll.outcome.is_err() {
                    round.failed.insert(index(&poll.target));
                }
            }
            _ => {}
        }
    }
    round
}

fn changes(items: &[(usize, &'static str, u64)]) -> BTreeSet<(usize, &'static str, u64)> {
    items.iter().copied().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_open_close_and_a_host_that_went_away_closes_nothing() {
    let a = live_server(&[1, 2]).await;
    let b = live_server(&[10]).await;
    let c = live_server(&[20, 21]).await;
    let targets = [a.url.as_str(), b.url.as_str(), c.url.as_str()];
    // Which targets the fleet made a client for, each time.
    let made = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let template = basic_client(&a.url);
    let making = made.clone();
    let counted = Fleet::new(move |target| {
        making.lock().unwrap().push(target.to_owned());
        template.with_target(target)
    });
    let fleet = counted
        .retry(RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        })
        .per_host_deadline(Duration::from_secs(5));
    let mut events = Watch::<SmbSession>::new(fleet)
        .every(Duration::from_millis(400))
        .polls(3)
        .start(targets);

    let first = round(&mut events, &targets).await;
    assert_eq!(
        first.changes,
        changes(&[
            (0, "present", 1),
            (0, "present", 2),
            (1, "present", 10),
            (2, "present", 20),
            (2, "present", 21)
        ])
    );
    // Between polls: a session closed with ForceClose, a server with one more, a host down.
    basic_client(&a.url)
        .force_close_smb_session(1)
        .await
        .unwrap();
    b.set(&[10, 11]);
    c.down.store(true, Ordering::SeqCst);
    let second = round(&mut events, &targets).await;
    assert_eq!(
        second.changes,
        changes(&[(0, "closed", 1), (1, "opened", 11)])
    );
    assert_eq!(
        second.failed,
        BTreeSet::from([2]),
        "unreachable, and nothing closed on it"
    );
    // The host is back with one session gone and one new: compared with its last success.
    c.set(&[21, 22]);
    c.down.store(false, Ordering::SeqCst);
    let third = round(&mut events, &targets).await;
    assert_eq!(
        third.changes,
        changes(&[(2, "closed", 20), (2, "opened", 22)])
    );
    assert!(third.failed.is_empty());
    assert!(events.next().await.is_none(), "three polls, then the end");
    // Each host's client was kept from poll to poll, but for the one whose poll failed: it
    // came back through a client made anew.
    let mut made = made.lock().unwrap().clone();
    made.sort();
    let mut expected = vec![a.url.clone(), b.url.clone(), c.url.clone(), c.url.clone()];
    expected.sort();
    assert_eq!(made, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_resumes_a_watch_where_the_last_one_stopped() {
    let server = live_server(&[1, 2, 3]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watch.db");
    let run = |store_path: std::path::PathBuf, url: String| async move {
        let mut store = Store::open(&store_path).unwrap();
        let mut watch = Watch::class(
            fleet(&url),
            <SmbSession as winrm_sessions::cim::CimClass>::class_path(),
        )
        .every(Duration::from_millis(50))
        .polls(1)
        .report_unchanged(true);
        if let Some(open) = store.resume("MSFT_SmbSession", &url).unwrap() {
            watch = watch.resume(&url, open).unwrap();
        }
        let mut seen = BTreeSet::new();
        let mut pending = Vec::new();
        let mut events = watch.start([url.clone()]);
        while let Some(event) = events.next().await {
            match event {
                WatchEvent::Session(e) => {
                    seen.insert((format!("{:?}", e.change), e.key.to_string()));
                    pending.push(e);
                }
                WatchEvent::Polled(poll) => {
                    store
                        .record("MSFT_SmbSession", &poll, &std::mem::take(&mut pending))
                        .unwrap();
                }
                _ => {}
            }
        }
        seen
    };
    let first = run(path.clone(), server.url.clone()).await;
    assert_eq!(first.iter().filter(|(c, _)| c == "Present").count(), 3);
    // While nobody watches: 1 closes, 4 opens. The restarted watch says exactly that.
    server.set(&[2, 3, 4]);
    let second = run(path.clone(), server.url.clone()).await;
    let kinds: BTreeSet<(String, String)> = second;
    assert!(kinds.contains(&("Closed".into(), r#"MSFT_SmbSession.SessionId="1""#.into())));
    assert!(kinds.contains(&("Opened".into(), r#"MSFT_SmbSession.SessionId="4""#.into())));
    assert!(kinds.contains(&("Present".into(), r#"MSFT_SmbSession.SessionId="2""#.into())));
    assert!(
        !kinds
            .iter()
            .any(|(c, k)| c == "Opened" && k.contains("\"2\"")),
        "2 is not new"
    );
    let history = Store::open_read_only(&path)
        .unwrap()
        .history(&HistoryFilter::new())
        .unwrap();
    assert_eq!(history.len(), 4, "one row per session");
    assert_eq!(history.iter().filter(|h| h.open).count(), 3);
    let user1 = Store::open_read_only(&path)
        .unwrap()
        .history(&HistoryFilter::new().user("user1"))
        .unwrap();
    assert_eq!((user1.len(), user1[0].open), (1, false));
}

#[tokio::test(flavor = "multi_thread")]
async fn each_hosts_session_events_come_right_before_its_poll_ends() {
    // A hundred hosts answering at once, three times: their answers reach the watch interleaved, and a host's
    // events must still come together, right before its `Polled` (a store keeps a host's
    // events until then: interleaved, it would hold every host's at once).
    let server = crate::support::demo_server().await;
    let targets: Vec<String> = (0..100)
        .map(|i| format!("{}?host={i}", server.url()))
        .collect();
    let mut events = Watch::<SmbSession>::new(fleet(server.url()).concurrency(100))
        .every(Duration::from_millis(1))
        .report_unchanged(true)
        .polls(3)
        .start(targets.clone());
    let mut run: Option<(String, usize)> = None;
    let mut polls: std::collections::HashMap<String, (usize, usize)> = Default::default();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .expect("the watch ends on time")
    {
        match event {
            WatchEvent::Session(e) => match &mut run {
                Some((target, count)) => {
                    assert_eq!(*target, e.target, "another host's event in {target}'s run");
                    *count += 1;
                }
                None => run = Some((e.target, 1)),
            },
            WatchEvent::Polled(poll) => {
                let sessions = *poll.outcome.as_ref().expect("every host answers");
                let seen = match run.take() {
                    Some((target, count)) => {
                        assert_eq!(
                            target, poll.target,
                            "{target}'s events end with another poll"
                        );
                        count
                    }
                    None => 0,
                };
                assert_eq!(
                    seen, sessions,
                    "{}: every session reported, right before",
                    poll.target
                );
                let entry = polls.entry(poll.target).or_default();
                entry.0 += 1;
                entry.1 += seen;
            }
            _ => {}
        }
    }
    assert_eq!(polls.len(), 100);
    for (target, (count, sessions)) in &polls {
        assert_eq!(*count, 3, "{target}: three polls");
        assert!(*sessions > 0, "{target}: sessions reported");
    }
}

/// Runs a watch of `hosts` targets on `server` over NTLM, three polls, `concurrency` hosts at a
/// time; returns the server's connection counts once every poll has ended, each a success.
async fn watch_over_ntlm(
    server: FixtureServer,
    hosts: usize,
    concurrency: usize,
) -> ConnectionStats {
    let template = Client::builder(server.url())
        .credentials(Credentials::new("demo", "demo"))
        .auth(Auth::Negotiate)
        .build()
        .unwrap();
    let targets: Vec<String> = (0..hosts)
        .map(|i| format!("{}?host={i}", server.url()))
        .collect();
    let fleet = Fleet::from_client(template).concurrency(concurrency);
    let mut events = Watch::<SmbSession>::new(fleet)
        .every(Duration::from_millis(1))
        .polls(3)
        .start(targets);
    let mut polls = 0;
    while let Some(event) = tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .expect("the watch ends on time")
    {
        if let WatchEvent::Polled(poll) = event {
            poll.outcome.expect("every host answers");
            polls += 1;
        }
    }
    assert_eq!(polls, 3 * hosts);
    server.connection_stats()
}

/// A watched host's next poll goes out on the connection, and under the NTLM session, its last
/// one left open: three polls of each host cost one connection and one handshake, not three
/// (and on Windows, one logon instead of one a poll). At most as many hosts as are in flight
/// keep theirs.
#[tokio::test(flavor = "multi_thread")]
async fn a_watched_host_keeps_its_connection_and_session_from_one_poll_to_the_next() {
    let stats = watch_over_ntlm(crate::support::demo_server().await, 4, 4).await;
    assert_eq!((stats.opened, stats.handshakes), (4, 4), "{stats:?}");
    assert_eq!(stats.unauthenticated, 0, "{stats:?}");
    // Two in flight: the first two targets keep theirs, the other two connect each poll.
    let stats = watch_over_ntlm(crate::support::demo_server().await, 4, 2).await;
    assert_eq!(
        (stats.opened, stats.handshakes),
        (2 + 2 * 3, 2 + 2 * 3),
        "{stats:?}"
    );
}

/// A kept connection the server closed between two polls (its idle timeout, a restart) is
/// found closed before the next poll's first request goes out on it: that poll opens a new
/// one, authenticates again and succeeds; no sealed request goes out on a connection that did
/// not authenticate.
#[tokio::test(flavor = "multi_thread")]
async fn a_kept_connection_closed_between_polls_costs_a_new_one_and_no_poll() {
    // Each poll of a new connection: the two requests of the handshake and four sealed ones.
    let fixtures = FixtureSet::from_dir(crate::support::demo_fixtures()).unwrap();
    let server = FixtureServer::builder(fixtures)
        .drop_connections_after(6)
        .start()
        .await
        .unwrap();
    let stats = watch_over_ntlm(server, 2, 2).await;
    assert_eq!((stats.opened, stats.handshakes), (6, 6), "{stats:?}");
    assert_eq!(stats.closed_by_server, 6, "{stats:?}");
    assert_eq!(stats.unauthenticated, 0, "{stats:?}");
}
