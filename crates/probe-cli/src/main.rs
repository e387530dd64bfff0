//! `probe`: latent-space interpretability of language models for survey simulation.
//! This file only parses arguments and dispatches; each subcommand lives in `commands/`.

// Forward passes allocate and free many large activation buffers; glibc returns them to the
// kernel and page-faults them back in on every op, which mimalloc avoids.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use probe_cli::{dispatch, Cli};

/// Backends (libtorch, CubeCL) panic when a GPU allocation fails; such a panic becomes one
/// error line naming the model, its size and dtype and the free memory (`common`), not a
/// backtrace. Any other panic is reported as usual.
fn report_out_of_memory_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if is_closed_stdout(message) {
            // `probe inspect m.gguf | head -1`: the reader has what it wanted; end quietly, as
            // `cat` does.
            std::process::exit(0);
        } else if probe_cli::is_out_of_memory(message) {
            probe_cli::note_out_of_memory(message);
        } else if probe_cli::out_of_memory_error().is_none() {
            // (After an out-of-memory panic, the panics it causes in other threads stay quiet.)
            default(info);
        }
    }));
}

/// The panic `println!` raises when stdout's reader has gone (EPIPE).
fn is_closed_stdout(message: &str) -> bool {
    message.contains("failed printing to stdout") && message.contains("Broken pipe")
}

fn main() {
    probe::alloc::keep_freed_memory_mapped();
    report_out_of_memory_panics();
    let cli = Cli::parse();
    let result = match std::panic::catch_unwind(|| dispatch(cli.command)) {
        Ok(result) => result,
        Err(panic) => match probe_cli::out_of_memory_error() {
            Some(message) => Err(anyhow::anyhow!(message)),
            None => std::panic::resume_unwind(panic),
        },
    };
    if let Err(err) = result {
        // A write to a closed stdout that came back as an error: the same quiet end.
        if err.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        }) {
            std::process::exit(0);
        }
        // One line, outermost context first: "error: loading model x: missing tensor `y` in z".
        eprintln!("error: {}", probe::error_message(&err));
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    /// The hard-coded option index must be mimalloc's purge delay: a child process started with
    /// `MIMALLOC_PURGE_DELAY` set must read that value back through the index.
    #[test]
    fn purge_delay_option_index_is_the_one_the_variable_sets() {
        const CHILD: &str = "PROBE_TEST_MIMALLOC_CHILD";
        let name = "tests::purge_delay_option_index_is_the_one_the_variable_sets";
        if std::env::var_os(CHILD).is_some() {
            // SAFETY: plain FFI getter with a valid option index.
            let value =
                unsafe { libmimalloc_sys::mi_option_get(probe::alloc::MI_OPTION_PURGE_DELAY) };
            assert_eq!(
                value,
                4321,
                "index {} is not the purge delay",
                probe::alloc::MI_OPTION_PURGE_DELAY
            );
            return;
        }
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--test-threads=1"])
            .env(CHILD, "1")
            .env("MIMALLOC_PURGE_DELAY", "4321")
            .status()
            .unwrap();
        assert!(status.success(), "the child test failed: {status}");
    }
}
