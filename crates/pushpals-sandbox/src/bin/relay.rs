//! The in-sandbox relay as a program of its own (the `pushpals` binary
//! carries the same relay as a hidden subcommand).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(pushpals_sandbox::relay::relay_main(&args));
}
