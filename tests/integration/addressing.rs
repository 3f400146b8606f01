//! How classes are addressed: WMI's resource URIs for Windows, DSP0227's (`__cimnamespace`) for
//! a server whose Identify answer names another product, chosen once per host; and a URL's
//! scheme that contradicts the HTTPS setting.

use std::sync::{Arc, Mutex};

use futures_util::TryStreamExt;
use winrm_sessions::cim::Instance;
use winrm_sessions::{Auth, ClassAddressing, Client, Credentials};

use crate::support::{Behavior, hostile_server_seeing, soap};

/// OMI's answer to Identify, with its own quirk: the element in the SOAP namespace.
const OMI_IDENTITY: &str = concat!(
    r#"<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">"#,
    "<soap:Header/><soap:Body><soap:IdentifyResponse>",
    "<wsmid:ProtocolVersion>http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd</wsmid:ProtocolVersion>",
    "<wsmid:ProductVendor>Open Management Infrastructure</wsmid:ProductVendor>",
    "<wsmid:ProductVersion>1.0.8-6</wsmid:ProductVersion>",
    "</soap:IdentifyResponse></soap:Body></soap:Envelope>"
);

const WINDOWS_IDENTITY: &str = concat!(
    r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">"#,
    "<s:Header/><s:Body><wsmid:IdentifyResponse>",
    "<wsmid:ProtocolVersion>http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd</wsmid:ProtocolVersion>",
    "<wsmid:ProductVendor>Microsoft Corporation</wsmid:ProductVendor>",
    "<wsmid:ProductVersion>OS: 10.0.20348 SP: 0.0 Stack: 3.0</wsmid:ProductVersion>",
    "</wsmid:IdentifyResponse></s:Body></s:Envelope>"
);

/// A server that answers Identify with `identity` and every Enumerate with one item, keeping
/// the Enumerate requests it saw.
async fn server(identity: Behavior) -> (String, Arc<Mutex<Vec<String>>>, Arc<Mutex<usize>>) {
    let enumerates = Arc::new(Mutex::new(Vec::new()));
    let identifies = Arc::new(Mutex::new(0));
    let (seen, asked) = (enumerates.clone(), identifies.clone());
    let identity = Arc::new(Mutex::new(Some(identity)));
    let (url, task) = hostile_server_seeing(move |_, body| {
        if body.contains("Identify") {
            *asked.lock().unwrap() += 1;
            let answer = identity.lock().unwrap().take();
            return answer.expect("Identify asked once");
        }
        seen.lock().unwrap().push(body.to_owned());
        Behavior::Soap(soap(concat!(
            "<n:EnumerateResponse><w:Items>",
            r#"<p:XYZ_Number xmlns:p="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/XYZ_Number"><p:Number>7</p:Number></p:XYZ_Number>"#,
            "</w:Items><w:EndOfSequence/></n:EnumerateResponse>"
        )))
    })
    .await;
    std::mem::forget(task);
    (url, enumerates, identifies)
}

fn client(url: &str, addressing: ClassAddressing) -> Client {
    Client::builder(url)
        .credentials(Credentials::new("u", "p"))
        .auth(Auth::Basic)
        .danger_allow_basic_over_http(true)
        .class_addressing(addressing)
        .build()
        .unwrap()
}

const CIMV2_SELECTOR: &str =
    r#"<w:SelectorSet><w:Selector Name="__cimnamespace">root/cimv2</w:Selector></w:SelectorSet>"#;

#[tokio::test]
async fn a_server_that_names_another_product_is_asked_the_dmtf_way_and_once() {
    let (url, enumerates, identifies) = server(Behavior::Soap(OMI_IDENTITY.to_owned())).await;
    let client = client(&url, ClassAddressing::Auto);
    for _ in 0..2 {
        let items: Vec<Instance> = client
            .query("root\\cimv2", "SELECT * FROM XYZ_Number")
            .try_collect()
            .await
            .unwrap();
        assert_eq!(items.len(), 1);
    }
    let class = winrm_sessions::cim::ClassPath::new("root/cimv2", "XYZ_Number");
    let items: Vec<Instance> = client.enumerate_class(&class).try_collect().await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        *identifies.lock().unwrap(),
        1,
        "Identify is asked once per host"
    );
    let seen = enumerates.lock().unwrap();
    assert_eq!(seen.len(), 3);
    for query in &seen[..2] {
        assert!(
            query.contains(">http://schemas.dmtf.org/wbem/wscim/1/*</w:ResourceURI>"),
            "{query}"
        );
        assert!(query.contains(CIMV2_SELECTOR), "{query}");
    }
    assert!(
        seen[2].contains(">http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/XYZ_Number<"),
        "{}",
        seen[2]
    );
    assert!(seen[2].contains(CIMV2_SELECTOR), "{}", seen[2]);
}

#[tokio::test]
async fn windows_keeps_the_wmi_form_and_its_own_classes_need_no_identify() {
    let (url, enumerates, identifies) = server(Behavior::Soap(WINDOWS_IDENTITY.to_owned())).await;
    let client = client(&url, ClassAddressing::Auto);
    let _: Vec<Instance> = client
        .query("root/cimv2", "SELECT * FROM Win32_Process")
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        *identifies.lock().unwrap(),
        0,
        "Win32_ classes are Windows' own"
    );
    let _: Vec<Instance> = client
        .query("root/cimv2", "SELECT * FROM CIM_Process")
        .try_collect()
        .await
        .unwrap();
    assert_eq!(*identifies.lock().unwrap(), 1);
    for query in enumerates.lock().unwrap().iter() {
        assert!(
            query.contains(">http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*<"),
            "{query}"
        );
        assert!(!query.contains("__cimnamespace"), "{query}");
    }
}

#[tokio::test]
async fn a_server_without_identify_is_taken_for_windows_and_a_forced_form_asks_nothing() {
    let fault = crate::support::scripted::fault(
        "w:ActionNotSupported",
        2_150_858_770,
        "The action is not supported by the service.",
    );
    let (url, enumerates, identifies) = server(fault).await;
    let auto = client(&url, ClassAddressing::Auto);
    let _: Vec<Instance> = auto
        .query("root/cimv2", "SELECT * FROM XYZ_Number")
        .try_collect()
        .await
        .unwrap();
    let dmtf = client(&url, ClassAddressing::Dmtf);
    let _: Vec<Instance> = dmtf
        .query("root/cimv2", "SELECT * FROM Win32_Process")
        .try_collect()
        .await
        .unwrap();
    assert_eq!(*identifies.lock().unwrap(), 1);
    let seen = enumerates.lock().unwrap();
    assert!(seen[0].contains("/wmi/root/cimv2/*<"), "{}", seen[0]);
    assert!(seen[1].contains(CIMV2_SELECTOR), "{}", seen[1]);
}

#[test]
fn a_url_whose_scheme_contradicts_the_https_setting_is_refused_by_build() {
    for (url, https) in [("http://fs01/wsman", true), ("https://fs01/wsman", false)] {
        let e = Client::builder(url)
            .credentials(Credentials::new("u", "p"))
            .https(https)
            .build()
            .unwrap_err();
        assert!(
            matches!(e.kind(), winrm_sessions::ErrorKind::Config(_)),
            "{url}: {e}"
        );
        assert!(e.to_string().contains(url), "names the target: {e}");
    }
    // The URL decides by itself: Basic over an https:// URL needs no https(true).
    let client = Client::builder("https://fs01/wsman")
        .credentials(Credentials::new("u", "p"))
        .auth(Auth::Basic)
        .build()
        .unwrap();
    assert_eq!(client.endpoint().scheme(), "https");
}
