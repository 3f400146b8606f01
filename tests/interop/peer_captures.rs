//! Real Windows output collected by other projects (`../shared/peer-fixtures`, or the folder
//! `WINRM_SESSIONS_PEER_FIXTURES` names): every response parses, and a few are checked value
//! by value. Missing captures fail these tests (part of the interop suite, which never skips);
//! a capture of another kind than expected fails too.

use std::path::{Path, PathBuf};

use winrm_sessions::cim::Value;
use winrm_sessions::wsman::{ResponseBody, parse_response};

fn peer_dir() -> PathBuf {
    winrm_sessions::internals::peer_fixtures("")
}

fn xml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            xml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "xml") {
            out.push(path);
        }
    }
}

/// Responses recorded in pypsrp's YAML files: `  response: <s:Envelope ...>`, a plain scalar
/// that YAML may fold onto more-indented continuation lines (joined by one space), or a
/// single-quoted one with `''` for a quote.
fn yaml_bodies(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut bodies: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(body) = current.as_mut() {
            if line.starts_with("    ") {
                body.push(' ');
                body.push_str(line.trim_start());
                continue;
            }
            bodies.extend(current.take());
        }
        if let Some(value) = line.trim().strip_prefix("response: ") {
            current = Some(value.to_owned());
        }
    }
    bodies.extend(current);
    bodies
        .into_iter()
        .map(
            |v| match v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
                Some(quoted) => quoted.replace("''", "'"),
                None => v,
            },
        )
        .collect()
}

/// The fast scan of items and the event reader read a capture alike (Windows' own prefixes,
/// whitespace, datetimes and references included).
fn same_both_ways(name: &str, body: &[u8], failures: &mut Vec<String>) {
    let fast = format!("{:?}", parse_response(body));
    let slow = format!(
        "{:?}",
        winrm_sessions::internals::parse_response_event_by_event(body)
    );
    if fast != slow {
        failures.push(format!(
            "{name}: the scan read {fast}\nthe event reader read {slow}"
        ));
    }
}

#[test]
fn every_real_windows_response_parses() {
    let dir = peer_dir();
    let mut files = Vec::new();
    xml_files(&dir, &mut files);
    let mut parsed = 0;
    let mut failures = Vec::new();
    for file in &files {
        let name = file.strip_prefix(&dir).unwrap().display().to_string();
        // Client request templates with Python placeholders are not responses.
        if name.contains("request-templates") {
            continue;
        }
        let bytes = std::fs::read(file).unwrap();
        match parse_response(&bytes) {
            Ok(_) => parsed += 1,
            Err(e) => failures.push(format!("{name}: {e}")),
        }
        same_both_ways(&name, &bytes, &mut failures);
    }
    let mut yaml = Vec::new();
    for entry in std::fs::read_dir(dir.join("pypsrp/responses")).unwrap() {
        yaml.push(entry.unwrap().path());
    }
    for file in &yaml {
        for body in yaml_bodies(file) {
            match parse_response(body.as_bytes()) {
                Ok(_) => parsed += 1,
                Err(e) => failures.push(format!("{}: {e}", file.display())),
            }
            same_both_ways(&file.display().to_string(), body.as_bytes(), &mut failures);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        parsed + failures.len(),
        failures.join("\n")
    );
    assert!(parsed > 100, "parsed only {parsed}");
}

fn parse(rel: &str) -> ResponseBody {
    let path = peer_dir().join(rel);
    parse_response(&std::fs::read(path).unwrap()).unwrap().body
}

#[test]
fn windows_2012_process_pages_have_one_item_then_a_new_context_then_the_end() {
    let ResponseBody::Enumerate(first) =
        parse("txwinrm/data/server_2012/Win32_Process_star_000.xml")
    else {
        panic!("txwinrm/data/server_2012/Win32_Process_star_000.xml: another kind of response")
    };
    assert_eq!(first.items.len(), 1);
    assert_eq!(
        first.context.as_deref(),
        Some("uuid:92A308CD-D945-48E9-92F1-E81967952B61")
    );
    let idle = &first.items[0];
    assert_eq!(idle.class_name(), "Win32_Process");
    assert_eq!(idle.get("CommandLine"), Some(&Value::Null));
    assert_eq!(
        idle.get("KernelModeTime").and_then(Value::as_text),
        Some("137507861455")
    );
    let process: winrm_sessions::classes::Process = idle.deserialize().unwrap();
    assert_eq!(process.kernel_mode_time, Some(137_507_861_455));
    assert_eq!(process.creation_date, None);
    let ResponseBody::Pull(last) = parse("txwinrm/data/server_2012/Win32_Process_star_002.xml")
    else {
        panic!("txwinrm/data/server_2012/Win32_Process_star_002.xml: another kind of response")
    };
    assert!(last.end_of_sequence && last.context.is_none());
    for item in &last.items {
        let _: winrm_sessions::classes::Process = item.deserialize().unwrap();
    }
}

#[test]
fn real_faults_keep_their_codes() {
    let ResponseBody::Fault(fault) = parse("winrb-winrm/spec-mock-2013/wsman_fault.xml") else {
        panic!("winrb-winrm/spec-mock-2013/wsman_fault.xml: another kind of response")
    };
    assert!(fault.is_invalid_filter());
    assert_eq!(fault.wsman_code, Some(2_150_858_778));
    assert_eq!(fault.provider.as_deref(), Some("WMI Provider"));
    assert_eq!(fault.operation.as_deref(), Some("ExecQuery"));
    assert_eq!(
        fault.message.as_deref(),
        Some("The specified class does not exist in the given namespace.")
    );
    let ResponseBody::Fault(quota) = parse("txwinrm/data_error/max_concurrent.xml") else {
        panic!("txwinrm/data_error/max_concurrent.xml: another kind of response")
    };
    assert!(quota.is_quota_exceeded() && quota.is_retryable());
    let ResponseBody::Fault(get) = parse("opennms-wsman/itests-__files/get-response-fault.xml")
    else {
        panic!("opennms-wsman/itests-__files/get-response-fault.xml: another kind of response")
    };
    assert!(get.is_not_found());
}

#[test]
fn invoke_output_and_projections_parse() {
    let ResponseBody::MethodOutput(out) = parse("openwsman/bindings-ruby-tests/EnumKey.xml") else {
        panic!("openwsman/bindings-ruby-tests/EnumKey.xml: another kind of response")
    };
    let Some(Value::Array(names)) = out.get("sNames") else {
        panic!("{out:?}")
    };
    assert_eq!(names.len(), 26);
    assert_eq!(out.get("ReturnValue").and_then(Value::as_text), Some("0"));
    let ResponseBody::Pull(page) =
        parse("opennms-wsman/itests-__files/optimized-enum-response-with-fragments-2.xml")
    else {
        panic!(
            "opennms-wsman/itests-__files/optimized-enum-response-with-fragments-2.xml: another kind of response"
        )
    };
    assert_eq!(page.items.len(), 3);
    assert!(page.end_of_sequence);
}
