//! The `postdesk` binary: parses the command line and hands it to [`postdesk::cli::run`];
//! every command lives in the library, so this file stays this size (STYLE.md 4).

fn main() -> std::process::ExitCode {
    let cli = <postdesk::cli::Cli as clap::Parser>::parse();
    match postdesk::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("postdesk: {err:#}");
            std::process::ExitCode::from(1)
        }
    }
}
