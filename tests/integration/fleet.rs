//! Many hosts at once: good ones, a slow one, one refusing connections, one refusing the
//! password; retries only where they help; cancellation releases open enumerations.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use winrm_sessions::classes::SmbSession;
use winrm_sessions::fleet::{Fleet, HostEvent, RetryPolicy};
use winrm_sessions::testing::{FixtureServer, FixtureSet};
use winrm_sessions::{Auth, Client, Credentials, ErrorKind};

use crate::support::{Behavior, demo_fixtures, hostile_server, slow_hosts, soap};

async fn server(latency: Duration, password: &str) -> FixtureServer {
    FixtureServer::builder(FixtureSet::from_dir(demo_fixtures()).unwrap())
        .credentials("demo", password)
        .latency(latency)
        .start()
        .await
        .unwrap()
}

fn fleet() -> Fleet {
    Fleet::new(|target| {
        Client::builder(target)
            .credentials(Credentials::new("demo", "demo"))
            .connect_timeout(Duration::from_secs(2))
            .build()
    })
    .concurrency(8)
    .per_host_deadline(Duration::from_secs(2))
    .retry(RetryPolicy {
        attempts: 3,
        backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(100),
    })
}

#[tokio::test]
async fn every_host_gets_its_own_outcome_on_time_and_the_others_are_unaffected() {
    let good: Vec<FixtureServer> =
        futures_util::future::join_all((0..3).map(|_| server(Duration::ZERO, "demo"))).await;
    let slow = server(Duration::from_secs(5), "demo").await;
    let wrong_password = server(Duration::ZERO, "another").await;
    let refusing = "http://127.0.0.1:9/wsman".to_owned();
    let (garbage, _garbage_server) = hostile_server(|_| {
        Behavior::Raw("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n<garbage>".into())
    })
    .await;
    let mut targets: Vec<String> = good.iter().map(|s| s.url().to_owned()).collect();
    targets.extend([
        slow.url().to_owned(),
        wrong_password.url().to_owned(),
        refusing.clone(),
        garbage.clone(),
    ]);

    let started = Instant::now();
    let mut events = fleet().enumerate::<SmbSession>(targets.clone());
    let mut items = 0;
    let mut done = Vec::new();
    let mut failed = Vec::new();
    while let Some(event) = events.next().await {
        match event {
            HostEvent::Item { .. } => items += 1,
            HostEvent::Done { target, items, .. } => done.push((target, items)),
            HostEvent::Failed { target, error, .. } => failed.push((target, error)),
            _ => {}
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(items, 21, "seven sessions from each good host");
    assert_eq!(done.len(), 3);
    assert!(done.iter().all(|(_, n)| *n == 7));
    assert_eq!(failed.len(), 4);
    let error_of = |t: &str| &failed.iter().find(|(target, _)| target == t).unwrap().1;
    assert!(
        error_of(slow.url()).is_timeout(),
        "{:?}",
        error_of(slow.url())
    );
    assert!(error_of(wrong_password.url()).is_authentication());
    assert!(error_of(&refusing).is_connect());
    assert!(
        !error_of(&garbage).is_retryable(),
        "{:?}",
        error_of(&garbage)
    );
    for (target, error) in &failed {
        assert_eq!(
            error.target(),
            Some(target.as_str()),
            "each error names its host"
        );
    }
    // The slow host is cut at its 2 s deadline, not waited for.
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
}

/// The SMB sessions of one host through a fleet with Basic and three attempts.
async fn retried_basic_fleet(url: &str) -> Vec<HostEvent<SmbSession>> {
    let fleet = Fleet::new(|target| {
        Client::builder(target)
            .credentials(Credentials::new("demo", "demo"))
            .auth(Auth::Basic)
            .danger_allow_basic_over_http(true)
            .build()
    })
    .retry(RetryPolicy {
        attempts: 3,
        backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(40),
    });
    fleet.enumerate::<SmbSession>([url]).collect().await
}

fn session_ids(events: &[HostEvent<SmbSession>]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            HostEvent::Item { item, .. } => Some(item.session_id),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_quota_fault_is_retried_and_items_are_not_repeated() {
    let quota = concat!(
        r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value>"#,
        r#"<s:Subcode><s:Value>w:InternalError</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="">The WS-Management service cannot process the request. This user is allowed a maximum number of 15 concurrent operations, which has been exceeded.</s:Text></s:Reason>"#,
        r#"<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150859174" Machine="fs01"/></s:Detail></s:Fault></s:Body></s:Envelope>"#
    );
    let item = r#"<p:MSFT_SmbSession xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/SMB/MSFT_SmbSession"><p:SessionId>77</p:SessionId></p:MSFT_SmbSession>"#;
    let page = soap(&format!(
        "<n:EnumerateResponse><n:EnumerationContext></n:EnumerationContext><w:Items>{item}</w:Items><w:EndOfSequence/></n:EnumerateResponse>"
    ));
    let (url, _server) = hostile_server(move |n| {
        if n == 0 {
            Behavior::Raw(format!(
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/soap+xml\r\nContent-Length: {}\r\n\r\n{quota}",
                quota.len()
            ))
        } else {
            Behavior::Soap(page.clone())
        }
    })
    .await;
    let events = retried_basic_fleet(&url).await;
    let items = session_ids(&events);
    assert_eq!(items, [77]);
    assert!(matches!(
        events.last(),
        Some(HostEvent::Done { items: 1, .. })
    ));
}

/// A host that fails after it gave items is not started again: the items would come twice.
#[tokio::test]
async fn a_host_that_failed_after_giving_items_is_not_retried() {
    let quota = crate::support::scripted::fault(
        "w:InternalError",
        2_150_859_174,
        "This user is allowed a maximum number of 15 concurrent operations.",
    );
    let item = r#"<p:MSFT_SmbSession xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/SMB/MSFT_SmbSession"><p:SessionId>77</p:SessionId></p:MSFT_SmbSession>"#;
    let first = soap(&format!(
        "<n:EnumerateResponse><n:EnumerationContext>uuid:A</n:EnumerationContext><w:Items>{item}</w:Items></n:EnumerateResponse>"
    ));
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    let quota = std::sync::Mutex::new(Some(quota));
    let (url, _server) = hostile_server(move |n| {
        counted.fetch_add(1, Ordering::SeqCst);
        match n {
            0 => Behavior::Soap(first.clone()),
            _ => quota
                .lock()
                .unwrap()
                .take()
                .unwrap_or_else(|| Behavior::Soap(first.clone())),
        }
    })
    .await;
    let events = retried_basic_fleet(&url).await;
    let items = session_ids(&events);
    assert_eq!(items, [77], "given once");
    match events.last() {
        Some(HostEvent::Failed { error, .. }) => {
            assert_eq!(
                error.fault().and_then(|f| f.wsman_code),
                Some(2_150_859_174),
                "{error}"
            );
        }
        other => panic!("the host fails with the quota fault: {other:?}"),
    }
    // The Enumerate, the Pull that failed, perhaps its Release: no second Enumerate.
    let sent = requests.load(Ordering::SeqCst);
    assert!(sent <= 3, "{sent} requests: the host was started again");
}

#[tokio::test]
async fn an_authentication_failure_is_never_retried() {
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let (url, _server) = hostile_server(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        Behavior::Raw("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"WSMAN\"\r\nContent-Length: 0\r\n\r\n".into())
    })
    .await;
    let fleet = Fleet::new(|target| {
        Client::builder(target)
            .credentials(Credentials::new("demo", "wrong"))
            .auth(Auth::Basic)
            .danger_allow_basic_over_http(true)
            .build()
    });
    let events: Vec<_> = fleet.enumerate::<SmbSession>([url]).collect().await;
    assert!(matches!(&events[0], HostEvent::Failed { error, .. } if error.is_authentication()));
    assert_eq!(
        requests.load(Ordering::SeqCst),
        1,
        "one attempt: an account is not locked out by retries"
    );
}

#[tokio::test]
async fn dropping_the_stream_cancels_hosts_and_releases_their_enumerations() {
    let slow = server(Duration::from_millis(300), "demo").await;
    let mut events = fleet()
        .per_host_deadline(Duration::from_secs(30))
        .enumerate::<SmbSession>([slow.url().to_owned()]);
    // The first item comes with the Enumerate; a Pull is then in flight.
    loop {
        match events.next().await.unwrap() {
            HostEvent::Item { .. } => break,
            other => assert!(!matches!(other, HostEvent::Failed { .. }), "{other:?}"),
        }
    }
    drop(events);
    let deadline = Instant::now() + Duration::from_secs(5);
    while slow.stats().releases == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        slow.stats().releases,
        1,
        "the open enumeration was released"
    );
}

#[tokio::test]
async fn the_per_host_deadline_is_a_timeout_error() {
    let slow = server(Duration::from_secs(3), "demo").await;
    let events: Vec<_> = fleet()
        .per_host_deadline(Duration::from_millis(500))
        .enumerate::<SmbSession>([slow.url().to_owned()])
        .collect()
        .await;
    let HostEvent::Failed { error, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert!(
        matches!(error.kind(), ErrorKind::Deadline { .. })
            && error.is_timeout()
            && error.is_retryable(),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .ends_with("no answer within the per-host deadline of 500ms"),
        "{error}"
    );
}

fn urls(servers: &[FixtureServer]) -> Vec<String> {
    servers.iter().map(|s| s.url().to_owned()).collect()
}

/// Bounds the waits below: a fleet that never gets there fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(20);

/// With a channel of one event and a consumer that reads nothing until it has seen it, every
/// one of the C hosts in flight has a request at its server at once (never more than C), for
/// items, for whole pages and for `map`.
#[tokio::test]
async fn concurrency_is_what_it_says_whatever_the_buffer_and_the_consumer() {
    const HOSTS: usize = 10;
    const C: usize = 4;
    let (servers, probe) = slow_hosts(HOSTS, Duration::from_millis(100)).await;
    let fleet = fleet()
        .concurrency(C)
        .buffer(1)
        .per_host_deadline(Duration::from_secs(60));

    let events = fleet.enumerate::<SmbSession>(urls(&servers));
    assert_eq!(probe.wait_for_servers(C, PATIENCE).await, C, "items");
    let outcomes = drain(events).await;
    assert_eq!(outcomes, (HOSTS * 7, HOSTS, 0));
    assert_eq!(
        probe.peak_servers(),
        C,
        "never more hosts than the concurrency"
    );
    assert_eq!(probe.peak_requests(), C, "one request at a time per host");

    let (servers, probe) = slow_hosts(HOSTS, Duration::from_millis(100)).await;
    let events = fleet.run(urls(&servers), |client| {
        client.enumerate::<SmbSession>().max_elements(2).pages()
    });
    assert_eq!(probe.wait_for_servers(C, PATIENCE).await, C, "pages");
    let (pages, done, failed) = drain(events).await;
    assert_eq!((done, failed), (HOSTS, 0));
    assert!(pages >= HOSTS, "{pages} pages");
    assert_eq!(probe.peak_servers(), C);

    let (servers, probe) = slow_hosts(HOSTS, Duration::from_millis(100)).await;
    let events = fleet.map(urls(&servers), |client| async move {
        client.enumerate::<SmbSession>().count().await;
        Ok(())
    });
    assert_eq!(probe.wait_for_servers(C, PATIENCE).await, C, "map");
    assert_eq!(drain(events).await, (HOSTS, HOSTS, 0));
    assert_eq!(probe.peak_servers(), C);
}

/// A watch polls its hosts at the fleet's concurrency too.
#[tokio::test]
async fn a_watch_polls_every_host_in_flight_at_once() {
    const C: usize = 4;
    let (servers, probe) = slow_hosts(9, Duration::from_millis(100)).await;
    let fleet = fleet()
        .concurrency(C)
        .per_host_deadline(Duration::from_secs(60));
    let events = winrm_sessions::watch::Watch::<SmbSession>::new(fleet)
        .polls(1)
        .start(urls(&servers));
    assert_eq!(probe.wait_for_servers(C, PATIENCE).await, C);
    let polled = events
        .filter(|e| {
            futures_util::future::ready(
                matches!(e, winrm_sessions::watch::WatchEvent::Polled(p) if p.outcome.is_ok()),
            )
        })
        .count()
        .await;
    assert_eq!(polled, 9);
    assert_eq!(probe.peak_servers(), C);
}

/// (items, hosts done, hosts failed) of a fleet run, read to its end.
async fn drain<T>(mut events: winrm_sessions::fleet::FleetStream<T>) -> (usize, usize, usize) {
    let (mut items, mut done, mut failed) = (0, 0, 0);
    while let Some(event) = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("the fleet ends")
    {
        match event {
            HostEvent::Item { .. } => items += 1,
            HostEvent::Done { .. } => done += 1,
            HostEvent::Failed { error, .. } => {
                eprintln!("{error}");
                failed += 1
            }
            _ => {}
        }
    }
    (items, done, failed)
}

/// Bad hosts hold only their own slots: a host that never answers, one that refuses and one
/// whose enumeration never ends each end at the deadline (or at once) with their cause, while
/// the good, slow hosts use every other slot; nothing good is lost.
#[tokio::test]
async fn bad_hosts_hold_their_own_slots_and_end_at_their_deadline_with_their_cause() {
    const C: usize = 5;
    let (blackhole, _b) = hostile_server(|_| Behavior::Hang).await;
    let (endless, _e) =
        hostile_server(|n| Behavior::Soap(crate::support::endless_page(n, 50))).await;
    let refusing = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/wsman", listener.local_addr().unwrap())
    };
    let (good, probe) = slow_hosts(8, Duration::from_millis(100)).await;
    let mut targets = vec![blackhole.clone(), endless.clone(), refusing.clone()];
    targets.extend(urls(&good));
    let fleet = Fleet::new(|target| {
        Client::builder(target)
            .credentials(Credentials::new("demo", "demo"))
            .auth(Auth::Basic)
            .danger_allow_basic_over_http(true)
            .connect_timeout(Duration::from_secs(2))
            .operation_timeout(Duration::from_secs(30))
            .build()
    })
    .concurrency(C)
    // Long enough that the good hosts (three rounds of about half a second) are done well
    // before the bad ones free their slots, even on a loaded machine.
    .per_host_deadline(Duration::from_secs(8))
    .retry(RetryPolicy {
        attempts: 1,
        ..RetryPolicy::default()
    });
    let mut events = fleet.enumerate::<SmbSession>(targets);
    let mut items_of = std::collections::HashMap::<String, usize>::new();
    let mut failed = std::collections::HashMap::new();
    let mut done = 0;
    while let Some(event) = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("the fleet ends")
    {
        match event {
            HostEvent::Item { target, .. } => *items_of.entry(target).or_default() += 1,
            HostEvent::Done { .. } => done += 1,
            HostEvent::Failed { target, error, .. } => {
                failed.insert(target, error);
            }
            _ => {}
        }
    }
    assert_eq!(done, 8, "every good host answered: {failed:?}");
    assert!(good.iter().all(|s| items_of[s.url()] == 7));
    // The bad ones: two at their deadline, with what they were doing; one refused at once.
    assert!(failed[&blackhole].is_timeout(), "{}", failed[&blackhole]);
    assert!(failed[&endless].is_timeout(), "{}", failed[&endless]);
    assert!(
        items_of[&endless] > 50,
        "the endless host delivered as it went"
    );
    assert!(failed[&refusing].is_connect(), "{}", failed[&refusing]);
    assert_eq!(failed.len(), 3);
    // While two bad hosts held their slots, the good ones had the other three.
    assert_eq!(probe.peak_servers(), C - 2);
}
