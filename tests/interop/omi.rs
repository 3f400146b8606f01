//! Microsoft's OMI, a WS-Management server written by others (C, archived 2025): what a user
//! would try against it, each compared with OMI's own client (`omicli`) or with the instance
//! counts the kit states (XYZ_Number: 10,000 in root/cimv2; X_SmallNumber: 1,000).
//!
//! Needs the kit of `../shared/omi` built by `scripts/interop-tests` (which sets
//! `WINRM_SESSIONS_OMI_KIT` and `WINRM_SESSIONS_OMI_DIR`); without it these tests fail. Each
//! group starts OMI on free loopback ports and stops it when done.

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use winrm_sessions::cim::Instance;
use winrm_sessions::{Auth, ClassAddressing, Client, ClientBuilder, Credentials, ErrorKind};

use crate::support::omi::Omi;

fn builder(omi: &Omi, url: &str, auth: Auth, password: &str) -> ClientBuilder {
    Client::builder(url)
        .credentials(Credentials::new(omi.user.as_str(), password))
        .auth(auth)
        .ca_file(&omi.ca)
        .danger_allow_basic_over_http(true)
        .operation_timeout(Duration::from_secs(20))
}

fn client(omi: &Omi, url: &str, auth: Auth) -> Client {
    builder(omi, url, auth, &omi.password).build().unwrap()
}

/// The `Number` of each instance, sorted.
fn numbers(instances: &[Instance]) -> Vec<i64> {
    let mut numbers: Vec<i64> = instances
        .iter()
        .map(|i| {
            i.get("Number")
                .and_then(|v| v.as_text())
                .unwrap_or_else(|| panic!("no Number in {i:?}"))
                .parse()
                .unwrap()
        })
        .collect();
    numbers.sort_unstable();
    numbers
}

async fn query(
    client: &Client,
    namespace: &str,
    wql: &str,
) -> winrm_sessions::Result<Vec<Instance>> {
    client.query(namespace, wql).try_collect().await
}

/// Every way in, each giving what omicli gives: Basic on HTTP and HTTPS, NTLM on HTTPS, and
/// Negotiate (NTLM) on HTTP with message encryption; 10,000 instances over Pulls of 100 and of
/// the default page, a WHERE clause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_in_gives_what_omis_own_client_gives() {
    let omi = Omi::start();
    let expected = omi.omicli_numbers("root/cimv2", "XYZ_Number");
    assert_eq!(expected.len(), 10_000, "the kit's README");
    let small = omi.omicli_numbers("root/cimv2", "X_SmallNumber");
    assert_eq!(small.len(), 1_000, "the kit's README");

    let basic = client(&omi, &omi.http, Auth::Basic);
    let identity = basic.identify().await.unwrap();
    assert_eq!(
        identity.product_vendor.as_deref(),
        Some("Open Management Infrastructure")
    );
    let all = query(&basic, "root/cimv2", "SELECT * FROM XYZ_Number")
        .await
        .unwrap();
    assert_eq!(numbers(&all), expected, "Basic, HTTP, default page");
    let paged: Vec<Instance> = basic
        .query("root/cimv2", "SELECT * FROM XYZ_Number")
        .max_elements(100)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(numbers(&paged), expected, "Basic, HTTP, pages of 100");
    let below_ten = query(
        &basic,
        "root/cimv2",
        "SELECT * FROM X_SmallNumber WHERE Number < 10",
    )
    .await
    .unwrap();
    let expected_below_ten: Vec<i64> = small.iter().copied().filter(|n| *n < 10).collect();
    assert_eq!(numbers(&below_ten), expected_below_ten, "WHERE");

    let https = client(&omi, &omi.https, Auth::Basic);
    let all = query(&https, "root/cimv2", "SELECT * FROM X_SmallNumber")
        .await
        .unwrap();
    assert_eq!(numbers(&all), small, "Basic, HTTPS");

    let ntlm_https = client(&omi, &omi.https, Auth::Ntlm);
    let all = query(&ntlm_https, "root/cimv2", "SELECT * FROM XYZ_Number")
        .await
        .unwrap();
    assert_eq!(numbers(&all), expected, "NTLM, HTTPS (channel bindings)");

    let negotiate_http = client(&omi, &omi.http, Auth::Negotiate);
    let all: Vec<Instance> = negotiate_http
        .query("root/cimv2", "SELECT * FROM XYZ_Number")
        .max_elements(100)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        numbers(&all),
        expected,
        "Negotiate (NTLM), HTTP with message encryption, 100 Pulls on one authenticated connection"
    );
}

/// What a user gets wrong is said in words: an unknown class, an unknown namespace (a fault
/// naming it, never another namespace's data), a wrong password; and what OMI does with the
/// WMI form of address that Windows reads (it ignores the namespace in it), which is why OMI
/// gets the DMTF form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_are_named_and_no_namespace_is_swapped_for_another() {
    let omi = Omi::start();
    let basic = client(&omi, &omi.http, Auth::Basic);

    let e = query(&basic, "root/cimv2", "SELECT * FROM No_Such_Class")
        .await
        .unwrap_err();
    let fault = e.fault().unwrap_or_else(|| panic!("a fault: {e}"));
    assert!(
        e.to_string().contains("class does not exist"),
        "{e}: {fault:?}"
    );

    let e = query(&basic, "root/nosuch", "SELECT * FROM X_SmallNumber")
        .await
        .unwrap_err();
    assert!(e.fault().is_some(), "a fault, not data: {e}");
    let message = e.to_string();
    assert!(
        message.contains("namespace does not exist") && message.contains("root/nosuch"),
        "{message}"
    );

    for auth in [Auth::Basic, Auth::Ntlm] {
        let wrong = builder(&omi, &omi.http, auth, "not-the-password")
            .build()
            .unwrap();
        let e = query(&wrong, "root/cimv2", "SELECT * FROM X_SmallNumber")
            .await
            .unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::Authentication { .. }),
            "{auth:?}: {e}"
        );
    }

    // Windows' form: OMI reads no namespace from it and answers from `interop`, where
    // XYZ_Number is not registered.
    let wmi = builder(&omi, &omi.http, Auth::Basic, &omi.password)
        .class_addressing(ClassAddressing::Wmi)
        .build()
        .unwrap();
    let e = query(&wmi, "root/cimv2", "SELECT * FROM XYZ_Number")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("class does not exist"), "{e}");
    let dmtf = builder(&omi, &omi.http, Auth::Basic, &omi.password)
        .class_addressing(ClassAddressing::Dmtf)
        .build()
        .unwrap();
    let all = query(
        &dmtf,
        "root/cimv2",
        "SELECT * FROM XYZ_Number WHERE Number < 5",
    )
    .await
    .unwrap();
    assert_eq!(numbers(&all), vec![0, 1, 2, 3, 4]);
}

/// A server that misbehaves: OMI holding a request without credentials unanswered (its
/// deviation 1), a CA that did not sign its certificate, a certificate for another name, and
/// OMI stopped in the middle of an enumeration, then started again. Each is a typed error
/// within the deadline, nothing is given twice, and the client works again once OMI is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_misbehaves_is_a_typed_error_in_time() {
    let mut omi = Omi::start();

    // No credentials: OMI neither answers nor closes.
    let anonymous = Client::builder(omi.http.as_str())
        .operation_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let started = Instant::now();
    let e = query(&anonymous, "root/cimv2", "SELECT * FROM X_SmallNumber")
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Timeout { .. }), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // Another CA.
    let (other_ca, _, _) = crate::pki::pki(&["127.0.0.1"]);
    let wrong_ca = Client::builder(omi.https.as_str())
        .credentials(Credentials::new(omi.user.as_str(), omi.password.as_str()))
        .auth(Auth::Basic)
        .ca_pem(other_ca)
        .build()
        .unwrap();
    let e = query(&wrong_ca, "root/cimv2", "SELECT * FROM X_SmallNumber")
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Tls(winrm_sessions::TlsError::UnknownIssuer)
        ),
        "{e}"
    );

    // Stopped in the middle: the items before are given once, then a typed error.
    let basic = client(&omi, &omi.http, Auth::Basic);
    let mut stream = basic
        .query::<Instance>("root/cimv2", "SELECT * FROM XYZ_Number")
        .max_elements(100);
    let mut seen = Vec::new();
    for _ in 0..300 {
        seen.push(stream.try_next().await.unwrap().expect("10,000 instances"));
    }
    omi.stop();
    let started = Instant::now();
    let e = loop {
        match stream.try_next().await {
            Ok(Some(item)) => seen.push(item),
            Ok(None) => panic!("the enumeration ended normally with {} items", seen.len()),
            Err(e) => break e,
        }
    };
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(
        e.is_connect()
            || matches!(
                e.kind(),
                ErrorKind::EnumerationInterrupted { .. } | ErrorKind::ConnectionClosed { .. }
            ),
        "{e}"
    );
    let got = numbers(&seen);
    let mut unique = got.clone();
    unique.dedup();
    assert_eq!(got, unique, "an item given twice");

    // Back (on new ports): the same client's settings work again at once.
    omi.restart();
    let basic = basic.with_target(omi.http.as_str()).unwrap();
    let all = query(&basic, "root/cimv2", "SELECT * FROM X_SmallNumber")
        .await
        .unwrap();
    assert_eq!(all.len(), 1_000);
    let ntlm = client(&omi, &omi.http, Auth::Ntlm);
    let all = query(&ntlm, "root/cimv2", "SELECT * FROM X_SmallNumber")
        .await
        .unwrap();
    assert_eq!(all.len(), 1_000);

    // The certificate is for 127.0.0.1 and localhost; reached as 127.0.0.2 (through a
    // forwarder), it names another host.
    let forwarder = forward("127.0.0.2:0", omi.https.trim_start_matches("https://"));
    let url = format!("https://{forwarder}/wsman");
    let e = query(
        &client(&omi, &url, Auth::Basic),
        "root/cimv2",
        "SELECT * FROM X_SmallNumber",
    )
    .await
    .unwrap_err();
    match e.kind() {
        ErrorKind::Tls(winrm_sessions::TlsError::NameMismatch {
            expected,
            presented,
        }) => {
            assert_eq!(expected, "127.0.0.2");
            assert!(
                presented.iter().any(|name| name == "127.0.0.1"),
                "{presented:?}"
            );
        }
        _ => panic!("a name mismatch: {e}"),
    }
}

/// A TCP forwarder from `listen` to `upstream` (host:port/path: the path is dropped), in
/// threads of its own; returns the address it listens on.
fn forward(listen: &str, upstream: &str) -> std::net::SocketAddr {
    let upstream = upstream.split('/').next().unwrap().to_owned();
    let listener = std::net::TcpListener::bind(listen).unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut client_in, mut server_out) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut server_in, mut client_out) = (server, client);
            std::thread::spawn(move || std::io::copy(&mut client_in, &mut server_out));
            std::thread::spawn(move || std::io::copy(&mut server_in, &mut client_out));
        }
    });
    address
}
