//! The in-sandbox helper as a program of its own (the `pushpals` binary
//! carries the same helper as a hidden subcommand).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(pushpals_sandbox::helper::helper_main(&args));
}
