//! How requests name a class and its namespace: WMI's resource URIs, which Windows reads the
//! namespace from, or DSP0227's (the CIM schema URI with a `__cimnamespace` selector), which
//! servers that are not Windows (OMI, openwsman) read it from. Windows keeps the WMI form; a
//! server that says in its `Identify` answer that it is another product gets the DMTF form.

use crate::cim::ClassPath;
use crate::cim::{normalize_namespace, strip_prefix_ignore_case};
use crate::wsman::Identity;

/// How requests name a class and its namespace (see [`crate::ClientBuilder::class_addressing`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClassAddressing {
    /// WMI's form for the classes only Windows has (the typed ones, any `Win32_*` or `MSFT_*`,
    /// anything under `root/Microsoft`); for a query or a class given by name, the server is
    /// asked who it is first (`Identify`, once per client and host): Windows' WinRM
    /// gets WMI's form, any other product the DMTF form, and a server that does not say gets
    /// WMI's form.
    #[default]
    Auto,
    /// `http://schemas.microsoft.com/wbem/wsman/1/wmi/<namespace>/<Class>`: what Windows reads.
    Wmi,
    /// `http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/<Class>` with the `__cimnamespace`
    /// selector (DSP0227): what OMI and other CIM servers read.
    Dmtf,
}

/// The form chosen for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    Wmi,
    Dmtf,
}

/// The resource URI of a class in the DMTF form, before the class name.
pub const DMTF_CLASS_PREFIX: &str = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/";

/// The resource URI of a WQL query (any class) in the DMTF form.
pub const DMTF_ALL_CLASSES: &str = "http://schemas.dmtf.org/wbem/wscim/1/*";

impl ClassAddressing {
    /// The form, when it is known without asking the server: always for [`Self::Wmi`] and
    /// [`Self::Dmtf`]; under [`Self::Auto`], for the typed Windows classes (`windows_class`).
    pub(crate) fn known(self, windows_class: bool) -> Option<Style> {
        match self {
            ClassAddressing::Wmi => Some(Style::Wmi),
            ClassAddressing::Dmtf => Some(Style::Dmtf),
            ClassAddressing::Auto if windows_class => Some(Style::Wmi),
            ClassAddressing::Auto => None,
        }
    }
}

impl Style {
    /// What the server's `Identify` answer makes clear: Windows' WinRM says
    /// `OS: <version> SP: <sp> Stack: <stack>`; another product names itself (OMI says
    /// `Open Management Infrastructure`, `1.0.8-6`). An answer that names nothing is taken for
    /// Windows, as before.
    pub(crate) fn for_identity(identity: &Identity) -> Style {
        let version = identity.product_version.as_deref().unwrap_or_default();
        let windows = version.trim_start().starts_with("OS:") && version.contains("Stack:");
        let named = identity
            .product_vendor
            .as_deref()
            .is_some_and(|v| !v.trim().is_empty());
        if windows || !named {
            Style::Wmi
        } else {
            Style::Dmtf
        }
    }

    /// The resource URI and `__cimnamespace` of a class.
    pub(crate) fn class(self, class: &ClassPath) -> (String, Option<String>) {
        match self {
            Style::Wmi => (class.resource_uri(), None),
            Style::Dmtf => (
                format!("{DMTF_CLASS_PREFIX}{}", class.class_name()),
                Some(class.namespace().to_owned()),
            ),
        }
    }

    /// The resource URI and `__cimnamespace` of a WQL query in `namespace`.
    pub(crate) fn query(self, namespace: &str) -> (String, Option<String>) {
        match self {
            Style::Wmi => (crate::cim::wql_resource_uri(namespace), None),
            Style::Dmtf => (
                DMTF_ALL_CLASSES.to_owned(),
                Some(normalize_namespace(namespace)),
            ),
        }
    }
}

/// True for the classes only Windows has (`Win32_*`, `MSFT_*`, anything under
/// `root/Microsoft`): they get WMI's form under [`ClassAddressing::Auto`] without asking.
pub(crate) fn is_windows_class(namespace: &str, class: &str) -> bool {
    let starts = |s: &str, prefix: &str| strip_prefix_ignore_case(s, prefix).is_some();
    starts(class, "Win32_") || starts(class, "MSFT_") || starts(namespace, "root/Microsoft")
}

/// What an enumeration addresses, before the form is chosen.
#[derive(Clone, Debug)]
pub(crate) enum Resource {
    /// A class: a typed Windows class (`windows: true`) or one given by name.
    Class { path: ClassPath, windows: bool },
    /// A WQL query in a namespace; `windows` when its class is one only Windows has.
    Query { namespace: String, windows: bool },
    /// A resource URI as it is (associations of an object the server named).
    Uri(String),
}

impl Resource {
    /// The resource URI and `__cimnamespace` in `style`.
    pub(crate) fn address(&self, style: Style) -> (String, Option<String>) {
        match self {
            Resource::Class { path, .. } => style.class(path),
            Resource::Query { namespace, .. } => style.query(namespace),
            Resource::Uri(uri) => (uri.clone(), None),
        }
    }

    /// The form, if known without asking the server.
    pub(crate) fn known_style(&self, addressing: ClassAddressing) -> Option<Style> {
        match self {
            Resource::Class { windows, .. } => addressing.known(*windows),
            Resource::Query { windows, .. } => addressing.known(*windows),
            Resource::Uri(_) => Some(Style::Wmi),
        }
    }

    /// The namespace, for messages.
    pub(crate) fn namespace(&self) -> Option<&str> {
        match self {
            Resource::Class { path, .. } => Some(path.namespace()),
            Resource::Query { namespace, .. } => Some(namespace),
            Resource::Uri(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(vendor: &str, version: &str) -> Identity {
        Identity {
            protocol_version: None,
            product_vendor: Some(vendor.into()),
            product_version: Some(version.into()),
        }
    }

    #[test]
    fn windows_keeps_the_wmi_form_and_other_products_get_the_dmtf_form() {
        let cases = [
            (
                "Microsoft Corporation",
                "OS: 10.0.20348 SP: 0.0 Stack: 3.0",
                Style::Wmi,
            ),
            (
                "winrm-sessions fixture server",
                "OS: 0.0.0 SP: 0.0 Stack: 3.0",
                Style::Wmi,
            ),
            ("Open Management Infrastructure", "1.0.8-6", Style::Dmtf),
            ("Openwsman Project", "2.6.8", Style::Dmtf),
            ("", "", Style::Wmi),
        ];
        for (vendor, version, style) in cases {
            assert_eq!(
                Style::for_identity(&identity(vendor, version)),
                style,
                "{vendor}"
            );
        }
        assert_eq!(Style::for_identity(&Identity::default()), Style::Wmi);
    }

    #[test]
    fn classes_only_windows_has_are_known_by_name() {
        assert!(is_windows_class("root/cimv2", "Win32_Process"));
        assert!(is_windows_class("root/cimv2", "win32_serversession"));
        assert!(is_windows_class(
            "root/Microsoft/Windows/SMB",
            "MSFT_SmbSession"
        ));
        assert!(is_windows_class("root/microsoft/windows/smb", "Anything"));
        assert!(!is_windows_class("root/cimv2", "XYZ_Number"));
        assert!(!is_windows_class("root/cimv2", "CIM_Process"));
        assert!(!is_windows_class("interop", "Win"));
    }

    #[test]
    fn the_dmtf_form_names_the_namespace_in_a_selector() {
        let class = ClassPath::new("root\\cimv2", "XYZ_Number");
        assert_eq!(
            Style::Dmtf.class(&class),
            (
                "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/XYZ_Number".to_owned(),
                Some("root/cimv2".to_owned())
            )
        );
        assert_eq!(
            Style::Wmi.class(&class),
            (
                "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/XYZ_Number".to_owned(),
                None
            )
        );
        assert_eq!(
            Style::Dmtf.query("/root/nosuch/"),
            (DMTF_ALL_CLASSES.to_owned(), Some("root/nosuch".to_owned()))
        );
    }

    #[test]
    fn only_what_is_named_by_name_waits_for_the_server_under_auto() {
        let windows = Resource::Class {
            path: ClassPath::new("root/cimv2", "Win32_Process"),
            windows: true,
        };
        let named = Resource::Query {
            namespace: "root/cimv2".into(),
            windows: false,
        };
        assert_eq!(windows.known_style(ClassAddressing::Auto), Some(Style::Wmi));
        assert_eq!(named.known_style(ClassAddressing::Auto), None);
        assert_eq!(named.known_style(ClassAddressing::Dmtf), Some(Style::Dmtf));
        assert_eq!(
            windows.known_style(ClassAddressing::Dmtf),
            Some(Style::Dmtf)
        );
    }
}
