//! Pull progress as the user sees it: a bar per layer on a terminal
//! (indicatif), one plain line per event otherwise, nothing with `-q`. On
//! stdout for `containr pull`, as docker does, and on stderr when `run`
//! pulls, since stdout is then the container's. The registry code only
//! emits the events ([`containr::registry::progress::Progress`]).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use containr::registry::progress::{Progress, Quiet};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The renderer for `quiet`, on stdout or stderr.
pub fn new(quiet: bool, stdout: bool) -> Arc<dyn Progress> {
    if quiet {
        return Arc::new(Quiet);
    }
    let terminal = if stdout {
        std::io::stdout().is_terminal()
    } else {
        std::io::stderr().is_terminal()
    };
    if terminal {
        let target = if stdout {
            ProgressDrawTarget::stdout()
        } else {
            ProgressDrawTarget::stderr()
        };
        Arc::new(Bars {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
        })
    } else {
        Arc::new(Lines { stdout })
    }
}

/// One line per event.
struct Lines {
    stdout: bool,
}

impl Lines {
    fn line(&self, text: &str) {
        if self.stdout {
            println!("{text}");
        } else {
            eprintln!("{text}");
        }
    }
}

impl Progress for Lines {
    fn message(&self, text: &str) {
        self.line(text);
    }
    fn layer_start(&self, id: &str, size: u64) {
        self.line(&format!("{id}: Downloading ({size} bytes)"));
    }
    fn layer_position(&self, _: &str, _: u64) {}
    fn layer_advance(&self, _: &str, _: u64) {}
    fn layer_state(&self, id: &str, text: &str) {
        self.line(&format!("{id}: {text}"));
    }
    fn layer_finish(&self, id: &str, text: &str) {
        self.line(&format!("{id}: {text}"));
    }
}

/// A bar per layer being downloaded; lines of their own above them.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn with(&self, id: &str, f: impl FnOnce(&ProgressBar)) {
        if let Some(b) = self.bars.lock().expect("not poisoned").get(id) {
            f(b);
        }
    }
}

impl Progress for Bars {
    fn message(&self, text: &str) {
        let _ = self.multi.println(text);
    }
    fn layer_start(&self, id: &str, size: u64) {
        let bar = self.multi.add(ProgressBar::new(size));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix}: {msg:<12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(id.to_string());
        bar.set_message("Downloading");
        self.bars
            .lock()
            .expect("not poisoned")
            .insert(id.to_string(), bar);
    }
    fn layer_position(&self, id: &str, n: u64) {
        self.with(id, |b| b.set_position(n));
    }
    fn layer_advance(&self, id: &str, n: u64) {
        self.with(id, |b| b.inc(n));
    }
    fn layer_state(&self, id: &str, text: &str) {
        self.with(id, |b| b.set_message(text.to_string()));
    }
    fn layer_finish(&self, id: &str, text: &str) {
        // The bar gives way to a plain line that stays in the scrollback
        // whatever the terminal does with redraws.
        if let Some(b) = self.bars.lock().expect("not poisoned").remove(id) {
            b.finish_and_clear();
            self.multi.remove(&b);
        }
        let _ = self.multi.println(format!("{id}: {text}"));
    }
}
