//! The `winrm-sessions` command-line tool; see `winrm-sessions --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
