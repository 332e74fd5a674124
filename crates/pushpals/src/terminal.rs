//! Writing to the terminal: human output has its control sequences and
//! hidden characters neutralised ([`for_terminal`]), since titles, commands
//! and output come from repositories, models and programs; a closed pipe
//! (`pushpals log | head`) ends the program quietly instead of panicking.

use pushpals_core::visible::for_terminal;
use std::io::Write;

/// Writes human text to standard output, neutralised.
pub fn say(text: &str) {
    write_out(for_terminal(text).as_bytes());
}

/// Untrusted text made harmless for a terminal (see [`for_terminal`]).
pub fn neutralised(text: &str) -> String {
    for_terminal(text).into_owned()
}

/// Writes machine output (JSON) to standard output as it is.
pub fn write_raw(text: &str) {
    write_out(text.as_bytes());
}

fn write_out(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_all(bytes).and_then(|()| stdout.flush());
    if let Err(error) = written {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            // The reader went away (`| head`): nothing more to say.
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {error}");
        std::process::exit(1);
    }
}

/// `println!` for human text: neutralised, and quiet on a closed pipe.
macro_rules! say {
    () => {
        $crate::terminal::say("\n")
    };
    ($($arg:tt)*) => {
        $crate::terminal::say(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for human text: neutralised, and quiet on a closed pipe.
macro_rules! say_part {
    ($($arg:tt)*) => {
        $crate::terminal::say(&format!($($arg)*))
    };
}
