//! The `fanout` binary: the command line is [`cli`].

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
