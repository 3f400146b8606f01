//! Embeds fixtures/demo into the command-line tool, so that `winrm-sessions demo` runs from
//! anywhere with no files around.

use std::fmt::Write;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=fixtures/demo");
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("demo_fixtures.rs");
    let mut code = String::from("pub static DEMO_FIXTURES: &[(&str, &str, &str)] = &[\n");
    if std::env::var_os("CARGO_FEATURE_CLI").is_some() {
        let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"))
            .join("fixtures/demo");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| {
                        e.file_name()
                            .to_str()?
                            .strip_suffix(".request.xml")
                            .map(str::to_owned)
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        for name in names {
            let request = dir.join(format!("{name}.request.xml"));
            let response = dir.join(format!("{name}.response.xml"));
            let _ = writeln!(
                code,
                "    ({name:?}, include_str!({:?}), include_str!({:?})),",
                request.display().to_string(),
                response.display().to_string()
            );
        }
    }
    code.push_str("];\n");
    std::fs::write(out, code).expect("write demo_fixtures.rs");
}
