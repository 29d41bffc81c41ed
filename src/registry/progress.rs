//! Pull progress: a bar per layer on a terminal (indicatif), one plain line
//! per event otherwise, nothing with `-q`. On stdout for `containr pull`,
//! as docker does, and on stderr when `run` pulls, since stdout is then the
//! container's.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bars if the output is a terminal, lines if not.
    Auto {
        stdout: bool,
    },
    Quiet,
}

pub enum Progress {
    Bars(MultiProgress),
    Lines { stdout: bool },
    Quiet,
}

/// One line to stdout or stderr.
fn line(stdout: bool, text: &str) {
    if stdout {
        println!("{text}");
    } else {
        eprintln!("{text}");
    }
}

/// The progress of one layer.
pub enum Layer {
    Bar(ProgressBar, MultiProgress, String),
    Line(String, bool),
    Quiet,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        match mode {
            Mode::Quiet => Progress::Quiet,
            Mode::Auto { stdout: true } if std::io::stdout().is_terminal() => {
                Progress::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stdout()))
            }
            Mode::Auto { stdout: false } if std::io::stderr().is_terminal() => {
                Progress::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
            }
            Mode::Auto { stdout } => Progress::Lines { stdout },
        }
    }

    /// A line of its own (bars are redrawn below it).
    pub fn message(&self, text: &str) {
        match self {
            Progress::Bars(m) => {
                let _ = m.println(text);
            }
            Progress::Lines { stdout } => line(*stdout, text),
            Progress::Quiet => {}
        }
    }

    /// Start reporting on layer `id` of `size` bytes.
    pub fn layer(&self, id: &str, size: u64) -> Layer {
        match self {
            Progress::Bars(m) => {
                let bar = m.add(ProgressBar::new(size));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix}: {msg:<12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(id.to_string());
                bar.set_message("Downloading");
                Layer::Bar(bar, m.clone(), id.to_string())
            }
            Progress::Lines { stdout } => {
                line(*stdout, &format!("{id}: Downloading ({size} bytes)"));
                Layer::Line(id.to_string(), *stdout)
            }
            Progress::Quiet => Layer::Quiet,
        }
    }
}

impl Layer {
    pub fn advance(&self, n: u64) {
        if let Layer::Bar(b, ..) = self {
            b.inc(n);
        }
    }

    /// Bytes already there when a download resumes.
    pub fn set_position(&self, n: u64) {
        if let Layer::Bar(b, ..) = self {
            b.set_position(n);
        }
    }

    /// A new phase (`Extracting`) or the end (`Pull complete`).
    pub fn state(&self, text: &str) {
        match self {
            Layer::Bar(b, ..) => b.set_message(text.to_string()),
            Layer::Line(id, stdout) => line(*stdout, &format!("{id}: {text}")),
            Layer::Quiet => {}
        }
    }

    pub fn finish(&self, text: &str) {
        match self {
            // The bar gives way to a plain line that stays in the
            // scrollback whatever the terminal does with redraws.
            Layer::Bar(b, m, id) => {
                b.finish_and_clear();
                m.remove(b);
                let _ = m.println(format!("{id}: {text}"));
            }
            Layer::Line(id, stdout) => line(*stdout, &format!("{id}: {text}")),
            Layer::Quiet => {}
        }
    }
}
