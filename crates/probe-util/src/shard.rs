//! Splitting one job's units over independent jobs.

/// Job `k` of `n` (`--shard k/n`): this job does the units i with i mod n = k (cache shards,
/// persona rows, eval units, respondents), so independent jobs, e.g. a SLURM array, share one
/// output. Parsed once at the edge (`"0/4".parse()`), printed back as `k/n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSplit {
    pub k: usize,
    pub n: usize,
}

impl Default for ShardSplit {
    fn default() -> Self {
        ShardSplit { k: 0, n: 1 }
    }
}

impl ShardSplit {
    /// Whether this is the only job (`0/1`).
    pub fn is_whole(self) -> bool {
        self.n == 1
    }

    /// Whether unit `i` is this job's.
    pub fn owns(self, i: usize) -> bool {
        i % self.n == self.k
    }
}

impl std::fmt::Display for ShardSplit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl std::str::FromStr for ShardSplit {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected k/n, e.g. 0/4"))?;
        let (k, n): (usize, usize) = (
            k.trim()
                .parse()
                .map_err(|_| format!("`{s}`: k is not a number"))?,
            n.trim()
                .parse()
                .map_err(|_| format!("`{s}`: n is not a number"))?,
        );
        if n == 0 || k >= n {
            return Err(format!("`{s}`: need 0 ≤ k < n"));
        }
        Ok(ShardSplit { k, n })
    }
}

#[cfg(test)]
mod tests {
    use super::ShardSplit;

    #[test]
    fn parses_prints_and_refuses() {
        let s: ShardSplit = " 2 / 4".parse().unwrap();
        assert_eq!((s.k, s.n), (2, 4));
        assert_eq!(s.to_string(), "2/4");
        assert!(s.owns(6) && !s.owns(7) && !s.is_whole());
        assert_eq!(ShardSplit::default().to_string(), "0/1");
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2"] {
            assert!(bad.parse::<ShardSplit>().is_err(), "{bad}");
        }
    }
}
