//! Hook points with TransformerLens names, and the spec that chooses which are recorded.
//!
//! Names are kept byte-for-byte (`blocks.{l}.hook_resid_post`, `blocks.{l}.mlp.hook_post`, ...)
//! so artifacts line up with TransformerLens, SAELens and Neuronpedia.

use std::collections::BTreeSet;
use std::fmt;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HookPoint {
    /// `hook_embed`: token embeddings, the residual stream entering block 0.
    Embed,
    /// `blocks.{l}.hook_resid_pre`: the residual stream entering block l.
    ResidPre(usize),
    /// `blocks.{l}.hook_resid_mid`: after the attention sub-layer of block l.
    ResidMid(usize),
    /// `blocks.{l}.hook_resid_post`: after block l (before the final norm for the last block).
    ResidPost(usize),
    /// `blocks.{l}.mlp.hook_post`: the MLP coefficients m = act(gate·x) ⊙ (up·x) that weight
    /// the value vectors (columns of `down_proj`).
    MlpPost(usize),
    /// `blocks.{l}.attn.hook_z`: per-head attention outputs before `o_proj`, flattened over
    /// heads (`[batch, seq, n_heads * head_dim]`).
    AttnZ(usize),
}

/// The per-layer hook kinds, in the order a block produces them.
pub const LAYER_HOOK_KINDS: [&str; 5] = [
    "hook_resid_pre",
    "attn.hook_z",
    "hook_resid_mid",
    "mlp.hook_post",
    "hook_resid_post",
];

/// What a hook kind (`hook_embed` or one of [`LAYER_HOOK_KINDS`]) holds in a model with these
/// switches: where Gemma's extra norms sit relative to the hooks.
pub fn hook_meaning(kind: &str, switches: &crate::config::BlockSwitches) -> &'static str {
    let gemma = switches.sandwich_norms;
    let geglu = switches.activation == crate::config::Activation::GeluTanh;
    match kind {
        "hook_embed" if switches.scale_embedding => "token embedding × √hidden",
        "hook_embed" => "token embedding",
        "hook_resid_pre" => "the block's input",
        "attn.hook_z" => "every head's output, before o_proj",
        "hook_resid_mid" if gemma => "resid_pre + post_attention_layernorm(attention)",
        "hook_resid_mid" => "resid_pre + attention",
        "mlp.hook_post" if gemma && geglu => {
            "gelu_tanh(gate·x) ⊙ up·x, x = pre_feedforward_layernorm(resid_mid): weights of \
             down_proj's columns"
        }
        "mlp.hook_post" if geglu => "gelu_tanh(gate·x) ⊙ up·x: weights of down_proj's columns",
        "mlp.hook_post" => "silu(gate·x) ⊙ up·x: weights of down_proj's columns",
        "hook_resid_post" if gemma => "resid_mid + post_feedforward_layernorm(down_proj·m)",
        "hook_resid_post" => "resid_mid + down_proj·m",
        _ => "",
    }
}

impl HookPoint {
    pub fn layer(self) -> Option<usize> {
        match self {
            HookPoint::Embed => None,
            HookPoint::ResidPre(l)
            | HookPoint::ResidMid(l)
            | HookPoint::ResidPost(l)
            | HookPoint::MlpPost(l)
            | HookPoint::AttnZ(l) => Some(l),
        }
    }

    fn with_kind(kind: &str, layer: usize) -> Option<Self> {
        Some(match kind {
            "hook_resid_pre" => HookPoint::ResidPre(layer),
            "hook_resid_mid" => HookPoint::ResidMid(layer),
            "hook_resid_post" => HookPoint::ResidPost(layer),
            "mlp.hook_post" => HookPoint::MlpPost(layer),
            "attn.hook_z" => HookPoint::AttnZ(layer),
            _ => return None,
        })
    }

    /// Parses one exact name such as `blocks.3.hook_resid_post`.
    pub fn parse(name: &str, num_layers: usize) -> Result<Self> {
        if name == "hook_embed" {
            return Ok(HookPoint::Embed);
        }
        let spec = HookSpec::parse(name, num_layers)?;
        match spec.points.iter().collect::<Vec<_>>().as_slice() {
            [one] => Ok(**one),
            _ => Err(Error::Hook(format!(
                "`{name}` names more than one hook point"
            ))),
        }
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookPoint::Embed => write!(f, "hook_embed"),
            HookPoint::ResidPre(l) => write!(f, "blocks.{l}.hook_resid_pre"),
            HookPoint::ResidMid(l) => write!(f, "blocks.{l}.hook_resid_mid"),
            HookPoint::ResidPost(l) => write!(f, "blocks.{l}.hook_resid_post"),
            HookPoint::MlpPost(l) => write!(f, "blocks.{l}.mlp.hook_post"),
            HookPoint::AttnZ(l) => write!(f, "blocks.{l}.attn.hook_z"),
        }
    }
}

/// A set of layers, given as indices (`18`, `18..28`, `18..=27`, `*`) or fractions of the
/// layer count L (`0.6L..0.9L`, `0.75L`).
///
/// Fractions: layer = round(f · L), clamped to L − 1; f must lie in (0, 1]. A fractional range
/// `a L..b L` is inclusive of both ends (`0.6L..0.9L` on 30 layers is 18..=27, the paper's
/// 0.6L–0.9L), while an index range `a..b` is half-open as in Rust and `a..=b` inclusive.
pub fn parse_layers(spec: &str, num_layers: usize) -> Result<Vec<usize>> {
    let spec = spec.trim();
    let err = |msg: String| Err(Error::Hook(msg));
    if num_layers == 0 {
        return err("model has no layers".into());
    }
    if spec == "*" || spec == "all" {
        return Ok((0..num_layers).collect());
    }
    let mut out = BTreeSet::new();
    for part in spec.split(',') {
        let part = part.trim();
        if let Some((a, b)) = part.split_once("..") {
            let (b, inclusive) = match b.strip_prefix('=') {
                Some(b) => (b, true),
                None => (b, false),
            };
            let fractional = a.trim().ends_with(['L', 'l']) || b.trim().ends_with(['L', 'l']);
            let start = layer_bound(a, num_layers)?;
            let end = layer_bound(b, num_layers)?;
            let end_inclusive = if fractional || inclusive {
                end
            } else if end == 0 {
                return err(format!("empty layer range `{part}`"));
            } else {
                end - 1
            };
            if start > end_inclusive {
                return err(format!("empty layer range `{part}`"));
            }
            out.extend(start..=end_inclusive);
        } else {
            out.insert(layer_bound(part, num_layers)?);
        }
    }
    let max = *out.iter().max().expect("non-empty");
    if max >= num_layers {
        return err(format!(
            "layer {max} is out of range: the model has {num_layers} layers (0..{})",
            num_layers - 1
        ));
    }
    Ok(out.into_iter().collect())
}

/// One end of a layer range: an index, or a fraction `fL`.
fn layer_bound(text: &str, num_layers: usize) -> Result<usize> {
    let t = text.trim();
    if let Some(frac) = t.strip_suffix(['L', 'l']) {
        let f: f64 = frac
            .trim()
            .parse()
            .map_err(|_| Error::Hook(format!("`{t}` is not a layer fraction like 0.6L")))?;
        if !(f > 0.0 && f <= 1.0) {
            return Err(Error::Hook(format!(
                "layer fraction {f} is outside (0, 1]: write e.g. 0.6L..0.9L"
            )));
        }
        let layer = (f * num_layers as f64).round() as usize;
        Ok(layer.min(num_layers - 1))
    } else {
        t.parse::<usize>().map_err(|_| {
            Error::Hook(format!(
                "`{t}` is not a layer index, range (18..28) or fraction (0.6L)"
            ))
        })
    }
}

/// The hook points a forward pass records. Points not in the spec cost nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookSpec {
    points: BTreeSet<HookPoint>,
}

impl HookSpec {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_points(points: impl IntoIterator<Item = HookPoint>) -> Self {
        HookSpec {
            points: points.into_iter().collect(),
        }
    }

    /// Parses a comma-separated list whose items are exact names (`blocks.3.hook_resid_post`,
    /// `hook_embed`) or patterns with a layer set in braces or `*`:
    /// `blocks.{0.6L..0.9L}.hook_resid_post`, `blocks.*.mlp.hook_post`,
    /// `blocks.{18..=27}.hook_resid_post`. Separate several items with `;`.
    pub fn parse(spec: &str, num_layers: usize) -> Result<Self> {
        let mut points = BTreeSet::new();
        for item in spec.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "hook_embed" {
                points.insert(HookPoint::Embed);
                continue;
            }
            let rest = item.strip_prefix("blocks.").ok_or_else(|| {
                Error::Hook(format!(
                    "`{item}` is not a hook name: expected hook_embed or blocks.<layers>.<hook> \
                     with <hook> one of {}",
                    LAYER_HOOK_KINDS.join(", ")
                ))
            })?;
            let (layers, kind) = if let Some(inner) = rest.strip_prefix('{') {
                let (layers, kind) = inner
                    .split_once("}.")
                    .ok_or_else(|| Error::Hook(format!("unclosed `{{` in `{item}`")))?;
                (layers, kind)
            } else {
                rest.split_once('.')
                    .ok_or_else(|| Error::Hook(format!("`{item}` lacks a hook kind")))?
            };
            let layers = parse_layers(layers, num_layers)?;
            for l in layers {
                let point = HookPoint::with_kind(kind, l).ok_or_else(|| {
                    Error::Hook(format!(
                        "unknown hook `{kind}` in `{item}` (known: hook_embed, {})",
                        LAYER_HOOK_KINDS.join(", ")
                    ))
                })?;
                points.insert(point);
            }
        }
        if points.is_empty() {
            return Err(Error::Hook("no hook points given".into()));
        }
        Ok(HookSpec { points })
    }

    pub fn insert(&mut self, point: HookPoint) {
        self.points.insert(point);
    }

    pub fn contains(&self, point: HookPoint) -> bool {
        self.points.contains(&point)
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    pub fn points(&self) -> impl Iterator<Item = HookPoint> + '_ {
        self.points.iter().copied()
    }

    /// The last block any hook needs; `None` when only `hook_embed` (or nothing) is hooked.
    pub fn last_layer(&self) -> Option<usize> {
        self.points.iter().filter_map(|p| p.layer()).max()
    }

    /// Checks every layer index against the model.
    pub fn validate(&self, num_layers: usize) -> Result<()> {
        if let Some(max) = self.last_layer() {
            if max >= num_layers {
                return Err(Error::Hook(format!(
                    "hook on layer {max}, but the model has {num_layers} layers"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every "`SPEC` on N layers → A–B" example of docs/GUIDE.md, through the parser.
    #[test]
    fn the_guides_layer_examples_are_what_the_parser_does() {
        let guide = include_str!("../../../docs/GUIDE.md").replace('\n', " ");
        let mut checked = 0;
        for (at, _) in guide.match_indices(" layers → ") {
            let before = &guide[..at];
            let Some(tick_end) = before.rfind('`') else {
                continue;
            };
            let Some(tick_start) = before[..tick_end].rfind('`') else {
                continue;
            };
            let spec = &before[tick_start + 1..tick_end];
            let n: usize = before.rsplit(' ').next().unwrap().parse().unwrap();
            let range = guide[at + " layers → ".len()..]
                .split([' ', ';', ')', ','])
                .next()
                .unwrap();
            let (a, b) = range.split_once('–').unwrap();
            let want: Vec<usize> = (a.parse().unwrap()..=b.parse().unwrap()).collect();
            assert_eq!(
                parse_layers(spec, n).unwrap(),
                want,
                "GUIDE: `{spec}` on {n} layers → {range}"
            );
            checked += 1;
        }
        assert!(
            checked >= 3,
            "the GUIDE's layer examples were not found ({checked})"
        );
    }

    #[test]
    fn fractions_follow_the_paper_on_smollm2() {
        assert_eq!(
            parse_layers("0.6L..0.9L", 30).unwrap(),
            (18..=27).collect::<Vec<_>>()
        );
        assert_eq!(parse_layers("1.0L", 30).unwrap(), vec![29]);
        assert_eq!(
            parse_layers("18..28", 30).unwrap(),
            (18..28).collect::<Vec<_>>()
        );
        assert_eq!(
            parse_layers("18..=27", 30).unwrap(),
            (18..=27).collect::<Vec<_>>()
        );
        assert_eq!(parse_layers("0,5, 7", 30).unwrap(), vec![0, 5, 7]);
    }

    #[test]
    fn out_of_range_fractions_and_layers_are_errors() {
        for bad in ["0L", "1.2L", "-0.1L..0.5L", "30", "5..3", "abc", "0.5L..x"] {
            assert!(parse_layers(bad, 30).is_err(), "{bad} should fail");
        }
        let msg = parse_layers("1.5L", 30).unwrap_err().to_string();
        assert!(msg.contains("outside (0, 1]"), "{msg}");
    }

    #[test]
    fn spec_expands_patterns_to_transformer_lens_names() {
        let spec = HookSpec::parse(
            "blocks.{0.6L..0.9L}.hook_resid_post; blocks.2.mlp.hook_post; hook_embed",
            30,
        )
        .unwrap();
        let names: Vec<String> = spec.points().map(|p| p.to_string()).collect();
        assert!(names.contains(&"blocks.18.hook_resid_post".to_string()));
        assert!(names.contains(&"blocks.27.hook_resid_post".to_string()));
        assert!(!names.contains(&"blocks.28.hook_resid_post".to_string()));
        assert!(names.contains(&"blocks.2.mlp.hook_post".to_string()));
        assert!(names.contains(&"hook_embed".to_string()));
        assert_eq!(spec.last_layer(), Some(27));
        assert_eq!(
            HookPoint::parse("blocks.4.attn.hook_z", 30).unwrap(),
            HookPoint::AttnZ(4)
        );
        assert!(HookSpec::parse("blocks.*.hook_nope", 30).is_err());
        assert!(HookSpec::parse("resid_post", 30).is_err());
    }
}
