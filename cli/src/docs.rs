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
        // The README's install line writes to a folder a fresh account often lacks.
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| clap_mangen::generate_to(root, &dir))
            .and_then(|()| {
                let page = dir.join("winrm-sessions.1");
                std::fs::write(&page, examples_section(std::fs::read(&page)?))
            });
        return match written {
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
    finish(io::stdout().lock().write_all(&examples_section(roff)))
}

/// The examples of `--help` (clap's `after_help`, which clap_mangen writes as an `EXTRA`
/// section) as a proper `EXAMPLES` section, lines kept as they are.
fn examples_section(roff: Vec<u8>) -> Vec<u8> {
    let Ok(text) = String::from_utf8(roff.clone()) else {
        return roff;
    };
    let Some(start) = text.find(".SH EXTRA\nExamples:\n") else {
        return roff;
    };
    let body_start = start + ".SH EXTRA\nExamples:\n".len();
    let body_end = text[body_start..]
        .find("\n.SH ")
        .map_or(text.len(), |at| body_start + at + 1);
    format!(
        "{}.SH EXAMPLES\n.nf\n{}.fi\n{}",
        &text[..start],
        &text[body_start..body_end],
        &text[body_end..]
    )
    .into_bytes()
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
