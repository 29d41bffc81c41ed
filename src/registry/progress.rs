//! What a pull reports as it goes. The registry code only emits these
//! events; the front end renders them (bars on a terminal, lines
//! otherwise, nothing with `-q`: see `src/cli/progress.rs`).

/// Receives a pull's events, from several download threads at once.
pub trait Progress: Send + Sync {
    /// A line of its own (`Digest: ...`, `<layer>: Already exists`).
    fn message(&self, text: &str);
    /// Layer `id` (a short digest) of `size` bytes starts downloading.
    fn layer_start(&self, id: &str, size: u64);
    /// `n` bytes of layer `id` were already there (a resumed download).
    fn layer_position(&self, id: &str, n: u64);
    /// `n` more bytes of layer `id` arrived.
    fn layer_advance(&self, id: &str, n: u64);
    /// Layer `id` entered a new phase (`Extracting`).
    fn layer_state(&self, id: &str, text: &str);
    /// Layer `id` is done (`Pull complete`).
    fn layer_finish(&self, id: &str, text: &str);
}

/// Reports nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn message(&self, _: &str) {}
    fn layer_start(&self, _: &str, _: u64) {}
    fn layer_position(&self, _: &str, _: u64) {}
    fn layer_advance(&self, _: &str, _: u64) {}
    fn layer_state(&self, _: &str, _: &str) {}
    fn layer_finish(&self, _: &str, _: &str) {}
}

/// The events of one layer.
pub struct Layer<'a> {
    sink: &'a dyn Progress,
    id: String,
}

impl<'a> Layer<'a> {
    pub fn start(sink: &'a dyn Progress, id: &str, size: u64) -> Layer<'a> {
        sink.layer_start(id, size);
        Layer {
            sink,
            id: id.to_string(),
        }
    }

    pub fn advance(&self, n: u64) {
        self.sink.layer_advance(&self.id, n);
    }

    /// Bytes already there when a download resumes.
    pub fn set_position(&self, n: u64) {
        self.sink.layer_position(&self.id, n);
    }

    /// A new phase (`Extracting`).
    pub fn state(&self, text: &str) {
        self.sink.layer_state(&self.id, text);
    }

    /// The end (`Pull complete`).
    pub fn finish(&self, text: &str) {
        self.sink.layer_finish(&self.id, text);
    }
}
