//! The `openai` command: see `openai --help`.

fn main() -> std::process::ExitCode {
    openai_uploads::cli::main()
}
