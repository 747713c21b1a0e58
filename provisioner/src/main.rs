//! The `provision` binary; everything is in the library (see its docs).

fn main() -> std::process::ExitCode {
    provisioner::main()
}
