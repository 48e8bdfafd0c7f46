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
