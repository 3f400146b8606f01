//! `completions` and `man`: shell completion scripts and manual pages, generated from the same
//! argument definitions the tool parses with, so they never drift from it.

use std::io::{self, Write};

use clap::CommandFactory;

use crate::args::{Cli, ManArgs};
use crate::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> u8 {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "winrm-sessions", &mut script);
    finish(io::stdout().lock().write_all(&script))
}

/// Prints the tool's manual page or a command's (`winrm-sessions-smb-sessions(1)`), or writes
/// them all into a directory.
pub fn man(args: ManArgs) -> u8 {
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    if let Some(dir) = args.out_dir {
        return match clap_mangen::generate_to(root, &dir) {
            Ok(()) => {
                eprintln!("manual pages written to {}", dir.display());
                EXIT_OK
            }
            Err(e) => {
                eprintln!(
                    "winrm-sessions: cannot write the manual pages into {}: {e}",
                    dir.display()
                );
                EXIT_FAILED
            }
        };
    }
    let page = match &args.command {
        None => root,
        Some(name) => match root.find_subcommand(name) {
            Some(sub) => sub.clone(),
            None => {
                eprintln!("winrm-sessions: no command {name:?} (see winrm-sessions --help)");
                return EXIT_USAGE;
            }
        },
    };
    let mut roff = Vec::new();
    if let Err(e) = clap_mangen::Man::new(page).render(&mut roff) {
        eprintln!("winrm-sessions: cannot render the manual page: {e}");
        return EXIT_FAILED;
    }
    finish(io::stdout().lock().write_all(&roff))
}

/// A closed pipe (`| head`) is not an error.
fn finish(result: io::Result<()>) -> u8 {
    match result {
        Ok(()) => EXIT_OK,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            eprintln!("winrm-sessions: cannot write: {e}");
            EXIT_FAILED
        }
    }
}
