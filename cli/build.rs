//! Embeds the bundled recording (`fixtures/demo` of the repository) into the tool, so that
//! `winrm-sessions demo` runs from anywhere with no files around.

use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The recording: next to this crate in the repository, or inside it when it was packaged with
/// a copy.
fn fixtures() -> PathBuf {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let inside = manifest.join("fixtures/demo");
    if inside.is_dir() {
        inside
    } else {
        manifest.join("../fixtures/demo")
    }
}

fn main() {
    let dir = fixtures();
    println!("cargo:rerun-if-changed={}", dir.display());
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("demo_fixtures.rs");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the demo recording {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".request.xml")
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    let mut code = String::from("pub static DEMO_FIXTURES: &[(&str, &str, &str)] = &[\n");
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
    code.push_str("];\n");
    std::fs::write(out, code).expect("write demo_fixtures.rs");
}
