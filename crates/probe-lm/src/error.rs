//! Typed errors of the runtime. Every failure on user input ends here, never in a panic.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed GGUF file {path}: {reason}")]
    Gguf { path: PathBuf, reason: String },
    #[error("malformed safetensors file {path}: {reason}")]
    Safetensors { path: PathBuf, reason: String },
    #[error("unsupported tensor type {dtype} for tensor `{tensor}` (supported: {supported})")]
    UnsupportedDtype {
        tensor: String,
        dtype: String,
        supported: &'static str,
    },
    #[error("missing tensor `{name}` in {source_desc}")]
    MissingTensor { name: String, source_desc: String },
    #[error("tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("invalid model config: {0}")]
    Config(String),
    #[error("unknown model_type `{found}`: supported architectures are {supported}")]
    UnknownArchitecture { found: String, supported: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("invalid hook spec: {0}")]
    Hook(String),
    #[error("invalid input: {0}")]
    Input(String),
    #[error("device: {0}")]
    Device(String),
    #[error("chat template: {0}")]
    ChatTemplate(String),
    #[error("interrupted")]
    Interrupted,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
