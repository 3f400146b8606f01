//! Naming of WMI classes: namespace, class name, resource URI; and the traits that connect a
//! Rust type to a class.

use std::fmt;

use super::{DecodeError, Instance, reference::WMI_RESOURCE_PREFIX};

/// A WMI class in a namespace, e.g. `root/cimv2` : `Win32_Process`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClassPath {
    namespace: String,
    class_name: String,
}

impl ClassPath {
    /// A class in a namespace. Backslashes in the namespace are accepted (`root\cimv2`).
    pub fn new(namespace: impl AsRef<str>, class_name: impl Into<String>) -> Self {
        Self {
            namespace: normalize_namespace(namespace.as_ref()),
            class_name: class_name.into(),
        }
    }

    /// The namespace with forward slashes, e.g. `root/Microsoft/Windows/SMB`.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The class name, e.g. `MSFT_SmbSession`.
    pub fn class_name(&self) -> &str {
        &self.class_name
    }

    /// The WinRM resource URI of the class.
    pub fn resource_uri(&self) -> String {
        format!(
            "{WMI_RESOURCE_PREFIX}{}/{}",
            self.namespace, self.class_name
        )
    }

    /// Parses a WMI resource URI. Windows may echo the namespace in another case than it was
    /// asked for; the text is kept as it is.
    pub fn from_resource_uri(uri: &str) -> Option<Self> {
        let rest = strip_prefix_ignore_case(uri, WMI_RESOURCE_PREFIX)?;
        let (namespace, class) = rest.rsplit_once('/')?;
        if namespace.is_empty() || class.is_empty() || class == "*" {
            return None;
        }
        Some(Self::new(namespace, class))
    }

    /// True when both name the same class, comparing case-insensitively as WMI does.
    pub fn same_class(&self, other: &ClassPath) -> bool {
        self.namespace.eq_ignore_ascii_case(&other.namespace)
            && self.class_name.eq_ignore_ascii_case(&other.class_name)
    }
}

impl fmt::Display for ClassPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace, self.class_name)
    }
}

/// The resource URI for WQL queries in a namespace (`<namespace>/*`).
pub fn wql_resource_uri(namespace: &str) -> String {
    format!("{WMI_RESOURCE_PREFIX}{}/*", normalize_namespace(namespace))
}

/// A namespace with forward slashes and no slash at either end (`root\\cimv2` → `root/cimv2`).
pub(crate) fn normalize_namespace(namespace: &str) -> String {
    namespace.trim_matches(['/', '\\']).replace('\\', "/")
}

/// `s` without `prefix`, compared case-insensitively (ASCII).
pub(crate) fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// A Rust type that stands for a WMI class: where to find it.
///
/// Implement it next to `#[derive(Deserialize)]` to enumerate your own class:
///
/// ```
/// use serde::Deserialize;
/// use winrm_sessions::cim::CimClass;
///
/// #[derive(Deserialize)]
/// #[serde(rename_all = "PascalCase")]
/// struct Share {
///     name: String,
///     path: Option<String>,
/// }
///
/// impl CimClass for Share {
///     const NAMESPACE: &'static str = "root/cimv2";
///     const CLASS_NAME: &'static str = "Win32_Share";
/// }
/// ```
pub trait CimClass {
    /// The WMI namespace, with forward slashes.
    const NAMESPACE: &'static str;
    /// The class name.
    const CLASS_NAME: &'static str;
    /// The key properties: what identifies an instance on its server (and what its reference's
    /// selectors are). Empty when the type does not say.
    const KEYS: &'static [&'static str] = &[];

    /// The class path.
    fn class_path() -> ClassPath {
        ClassPath::new(Self::NAMESPACE, Self::CLASS_NAME)
    }
}

/// Conversion from a dynamic [`Instance`] into a typed value.
///
/// Every `CimClass + DeserializeOwned` type gets it through serde; polymorphic types such as
/// [`crate::classes::Session`] implement it by hand to dispatch on the concrete class.
pub trait FromInstance: Sized {
    /// Converts, consuming the instance.
    fn from_instance(instance: Instance) -> Result<Self, DecodeError>;
}

impl<T: CimClass + serde::de::DeserializeOwned> FromInstance for T {
    fn from_instance(instance: Instance) -> Result<Self, DecodeError> {
        instance.deserialize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_uri_round_trips_and_accepts_backslashes() {
        let path = ClassPath::new(r"root\Microsoft\Windows\SMB", "MSFT_SmbSession");
        assert_eq!(
            path.resource_uri(),
            "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/SMB/MSFT_SmbSession"
        );
        assert_eq!(
            ClassPath::from_resource_uri(&path.resource_uri()),
            Some(path)
        );
    }

    #[test]
    fn namespace_comparison_ignores_case() {
        let echoed = ClassPath::from_resource_uri(
            "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/microsoft/windows/smb/MSFT_SmbSession",
        )
        .unwrap();
        assert!(echoed.same_class(&ClassPath::new(
            "root/Microsoft/Windows/SMB",
            "MSFT_SmbSession"
        )));
    }

    #[test]
    fn wildcard_and_foreign_uris_are_not_classes() {
        assert_eq!(
            ClassPath::from_resource_uri(&wql_resource_uri("root/cimv2")),
            None
        );
        assert_eq!(ClassPath::from_resource_uri("http://example.com/x/y"), None);
    }
}
