//! Associations and methods: from a reference to what it is associated with, and calls.

use super::{Client, Enumeration};
use crate::cim::{FromInstance, Reference, wql_resource_uri};
use crate::error::{Error, ErrorKind, Result};
use crate::wsman::request::{self, Argument};
use crate::wsman::{AssociationFilter, AssociationKind, Filter, MessageId, ResponseBody};

/// What to follow from an object: the association class, the result class, the roles.
///
/// ```
/// use winrm_sessions::client_options::Associations;
/// let filter = Associations::new()
///     .association_class("Win32_SessionConnection")
///     .result_class("Win32_ServerConnection");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Associations {
    association_class: Option<String>,
    result_class: Option<String>,
    role: Option<String>,
    result_role: Option<String>,
}

impl Associations {
    /// Every association of the object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only through this association class, e.g. `Win32_SessionConnection`.
    pub fn association_class(mut self, class: impl Into<String>) -> Self {
        self.association_class = Some(class.into());
        self
    }

    /// Only results of this class.
    pub fn result_class(mut self, class: impl Into<String>) -> Self {
        self.result_class = Some(class.into());
        self
    }

    /// The role the object plays, e.g. `Antecedent`.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// The role the results play, e.g. `Dependent`.
    pub fn result_role(mut self, role: impl Into<String>) -> Self {
        self.result_role = Some(role.into());
        self
    }

    fn filter(self, kind: AssociationKind, object: &Reference) -> Filter {
        Filter::Association(AssociationFilter {
            kind,
            object: object.clone(),
            association_class: self.association_class,
            result_class: self.result_class,
            role: self.role,
            result_role: self.result_role,
        })
    }
}

/// Input parameters of a method, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct MethodInput {
    arguments: Vec<(String, Argument)>,
}

impl MethodInput {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a parameter written as text (strings, numbers, booleans).
    pub fn arg(mut self, name: impl Into<String>, value: impl ToString) -> Self {
        self.arguments
            .push((name.into(), Argument::Text(value.to_string())));
        self
    }

    /// Adds a parameter of any kind (reference, array, nil).
    pub fn argument(mut self, name: impl Into<String>, value: Argument) -> Self {
        self.arguments.push((name.into(), value));
        self
    }
}

/// A call whose connection failed after it was sent: the method may have run.
fn interrupted_invoke(error: Error, target: &Reference, method: &str) -> Error {
    if !error.broke_in_flight() {
        return error;
    }
    let method = match target.class_path() {
        Some(class) => format!("{}.{method}", class.class_name()),
        None => method.to_owned(),
    };
    let target = error.target().unwrap_or_default().to_owned();
    Error::from(ErrorKind::InvokeInterrupted {
        method,
        source: Box::new(error.without_target()),
    })
    .with_target(target)
}

/// The namespace of the object's class (associations are enumerated in it).
fn namespace_of(object: &Reference) -> Option<String> {
    object.class_path().map(|c| c.namespace().to_owned())
}

impl Client {
    /// The instances associated with `object` (DMTF association filter, like `ASSOCIATORS OF`).
    pub fn associators<T: FromInstance>(
        &self,
        object: &Reference,
        filter: Associations,
    ) -> Enumeration<T> {
        self.association_enumeration(object, filter, AssociationKind::Associated)
    }

    /// The association instances that refer to `object` (like `REFERENCES OF`).
    pub fn references<T: FromInstance>(
        &self,
        object: &Reference,
        filter: Associations,
    ) -> Enumeration<T> {
        self.association_enumeration(object, filter, AssociationKind::Associations)
    }

    fn association_enumeration<T: FromInstance>(
        &self,
        object: &Reference,
        filter: Associations,
        kind: AssociationKind,
    ) -> Enumeration<T> {
        let namespace = namespace_of(object).unwrap_or_else(|| "root/cimv2".into());
        Enumeration::new(
            self.clone(),
            super::addressing::Resource::Uri(wql_resource_uri(&namespace)),
            Some(filter.filter(kind, object)),
        )
    }

    /// Calls `method` on the instance `target` points to and returns its output parameters
    /// (`<Method>_OUTPUT`, with `ReturnValue`), typed or as an [`crate::cim::Instance`].
    pub async fn invoke<T: FromInstance>(
        &self,
        target: &Reference,
        method: &str,
        input: MethodInput,
    ) -> Result<T> {
        let envelope = request::invoke(
            &self.addressing(),
            target,
            method,
            &input.arguments,
            &MessageId::random(),
        )
        .map_err(|e| Error::from(ErrorKind::InvalidName(e)).with_target(self.target()))?;
        let output = match self
            .exchange_with(envelope, crate::transport::Resend::Forbidden)
            .await
            .map_err(|e| interrupted_invoke(e, target, method))?
        {
            ResponseBody::MethodOutput(output) => output,
            other => {
                return Err(
                    Error::protocol(format!("expected {method}_OUTPUT, got {other:?}"))
                        .with_target(self.target()),
                );
            }
        };
        T::from_instance(output).map_err(|e| Error::from(e).with_target(self.target()))
    }
}

impl Client {
    /// Closes an SMB session (`MSFT_SmbSession.ForceClose`), as `Close-SmbSession` does: open files
    /// of the client are closed and unsaved data may be lost. A non-zero return value is
    /// [`crate::ErrorKind::MethodFailed`] with its documented meaning.
    pub async fn force_close_smb_session(&self, session_id: u64) -> Result<()> {
        use crate::classes::{ForceCloseOutput, SmbSession, force_close_meaning};
        let output: ForceCloseOutput = self
            .invoke(
                &SmbSession::reference_for(session_id),
                "ForceClose",
                MethodInput::new(),
            )
            .await?;
        match output.return_value {
            Some(0) => Ok(()),
            // Success cannot be assumed from an answer that does not say.
            None => Err(Error::protocol(
                "MSFT_SmbSession.ForceClose answered without a ReturnValue: whether the session \
                 was closed is unknown",
            )
            .with_target(self.target())),
            Some(code) => Err(Error::new(crate::ErrorKind::MethodFailed {
                method: "MSFT_SmbSession.ForceClose".into(),
                return_value: code,
                meaning: Some(force_close_meaning(code).into()),
            })
            .with_target(self.target())),
        }
    }
}
