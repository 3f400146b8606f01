//! `server-sessions --with-connections` and `logon-sessions --with-processes`: records with
//! the joined instances nested under `Connections` / `Processes`, same JSON contract.

use serde::Serialize;
use serde_json::{Map, Value};
use winrm_sessions::{Client, Error, ErrorKind};

use super::Source;
use super::output::Record;

fn fields<T: Serialize>(value: &T) -> winrm_sessions::Result<Map<String, Value>> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) | Err(_) => Err(Error::new(ErrorKind::Protocol(
            "a typed instance did not serialize".into(),
        ))),
    }
}

fn nested<T: Serialize>(items: &[T], class: &str) -> winrm_sessions::Result<Value> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let mut map = fields(item)?;
        map.insert("CimClass".into(), Value::String(class.into()));
        out.push(Value::Object(map));
    }
    Ok(Value::Array(out))
}

pub async fn records(
    target: &str,
    client: &Client,
    source: &Source,
) -> winrm_sessions::Result<Vec<Record>> {
    let mut records = Vec::new();
    match source {
        Source::ServerSessionsWithConnections => {
            for joined in client.server_sessions_with_connections().await? {
                let mut map = fields(&joined.session)?;
                map.insert(
                    "Connections".into(),
                    nested(&joined.connections, "Win32_ServerConnection")?,
                );
                records.push(Record::new(target, "Win32_ServerSession", map));
            }
        }
        Source::LogonSessionsWithProcesses => {
            for joined in client.logon_sessions_with_processes().await? {
                let mut map = fields(&joined.session)?;
                map.insert(
                    "Processes".into(),
                    nested(&joined.processes, "Win32_Process")?,
                );
                records.push(Record::new(target, "Win32_LogonSession", map));
            }
        }
        _ => {}
    }
    Ok(records)
}
