#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    #[error("{0} is empty")]
    Empty(String),
    #[error("{what} has {left} and {right} entries: lengths must agree")]
    LengthMismatch {
        what: String,
        left: usize,
        right: usize,
    },
    #[error("{what}[{index}] is not finite")]
    NonFinite { what: String, index: usize },
    #[error("{what}[{index}] = {value} is negative")]
    Negative {
        what: String,
        index: usize,
        value: f64,
    },
    #[error("{what} sums to {sum}, not 1 (normalize counts first)")]
    NotNormalized { what: String, sum: f64 },
    #[error("KL divergence is infinite: q[{index}] = 0 where p[{index}] > 0; pass a smoothing ε")]
    InfiniteKl { index: usize },
    #[error("{0}")]
    InvalidInput(String),
}

pub type Result<T, E = MetricError> = std::result::Result<T, E>;
