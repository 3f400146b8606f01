//! What a command asks every target for, and the layout of its records.

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use winrm_sessions::cim::{ClassPath, Instance};
use winrm_sessions::classes::class_properties;
use winrm_sessions::wsman::wql::{SelectShape, select_shape};
use winrm_sessions::{Client, JoinSpec, Joined, Page};

use crate::output::{Columns, Layout};

/// What a command asks every target for.
#[derive(Clone, Debug)]
pub enum Source {
    Class(ClassPath),
    Query { namespace: String, wql: String },
    Join(JoinSpec),
}

/// What one page of a source holds.
pub enum Batch {
    Page(Page<Instance>),
    Joined(Vec<Joined>),
}

impl Source {
    /// The pages of this source on one host.
    pub fn batches(&self, client: &Client) -> BoxStream<'static, winrm_sessions::Result<Batch>> {
        match self {
            Source::Class(class) => client
                .enumerate_class(class)
                .pages()
                .map_ok(Batch::Page)
                .boxed(),
            Source::Query { namespace, wql } => client
                .query::<Instance>(namespace, wql.clone())
                .pages()
                .map_ok(Batch::Page)
                .boxed(),
            Source::Join(spec) => client.join(spec).map_ok(Batch::Joined).boxed(),
        }
    }

    /// The columns, schema and extra keys of this source's records.
    pub fn layout(&self) -> Layout {
        match self {
            Source::Class(class) if class.class_name().eq_ignore_ascii_case("Win32_Session") => {
                let mut schema = Vec::new();
                for subclass in ["Win32_LogonSession", "Win32_ServerSession"] {
                    for property in class_properties(subclass) {
                        if !schema.iter().any(|p: &String| p == property) {
                            schema.push(property.to_owned());
                        }
                    }
                }
                Layout::new(Columns::Fixed(strings(SESSION_COLUMNS)), schema)
            }
            Source::Class(class) => Layout::new(
                Columns::ClassView,
                strings(&class_properties(class.class_name())),
            ),
            Source::Query { wql, .. } => match select_shape(wql) {
                Some(SelectShape {
                    properties: Some(properties),
                    ..
                }) => Layout::new(Columns::Fixed(properties.clone()), properties),
                Some(SelectShape { class, .. }) => {
                    Layout::new(Columns::ClassView, strings(&class_properties(&class)))
                }
                None => Layout::new(Columns::ClassView, Vec::new()),
            },
            Source::Join(spec) => Layout::new(
                Columns::ClassView,
                strings(&class_properties(spec.left().class_name())),
            )
            .extras(&[joined_key(spec)]),
        }
    }
}

/// Columns for the abstract Win32_Session, whose rows are of several classes.
const SESSION_COLUMNS: &[&str] = &[
    "CimClass",
    "LogonId",
    "ComputerName",
    "UserName",
    "AuthenticationPackage",
    "StartTime",
];

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The key under which a join nests its right side.
fn joined_key(spec: &JoinSpec) -> &'static str {
    if spec
        .right()
        .class_name()
        .eq_ignore_ascii_case("Win32_Process")
    {
        "Processes"
    } else {
        "Connections"
    }
}
