//! AdamW (Loshchilov & Hutter; PyTorch's `torch.optim.AdamW` update, decoupled weight decay)
//! on the host over the adapters' few parameters, and the linear-warmup cosine schedule of
//! transformers' `get_cosine_schedule_with_warmup`. Host state is what makes a checkpoint
//! exact: parameters and moments are saved and restored bit for bit.

#[derive(Debug, Clone, PartialEq)]
pub struct AdamW {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Steps taken.
    pub t: u64,
    pub m: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
}

impl AdamW {
    pub fn new(sizes: &[usize], weight_decay: f64) -> Self {
        AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            t: 0,
            m: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            v: sizes.iter().map(|&n| vec![0.0; n]).collect(),
        }
    }

    /// One update of every parameter vector by its gradient at learning rate `lr`.
    pub fn step(&mut self, params: &mut [Vec<f32>], grads: &[Vec<f32>], lr: f64) {
        self.t += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let c1 = 1.0 - b1.powi(self.t as i32);
        let c2 = 1.0 - b2.powi(self.t as i32);
        for ((p, g), (m, v)) in params
            .iter_mut()
            .zip(grads)
            .zip(self.m.iter_mut().zip(self.v.iter_mut()))
        {
            for i in 0..p.len() {
                let gi = g[i] as f64;
                let mut pi = p[i] as f64 * (1.0 - lr * self.weight_decay);
                let mi = b1 * m[i] as f64 + (1.0 - b1) * gi;
                let vi = b2 * v[i] as f64 + (1.0 - b2) * gi * gi;
                pi -= lr * (mi / c1) / ((vi / c2).sqrt() + self.eps);
                m[i] = mi as f32;
                v[i] = vi as f32;
                p[i] = pi as f32;
            }
        }
    }
}

/// The learning rate after `step` of `total` optimizer steps: linear from 0 over `warmup`
/// steps, then half a cosine down to 0.
pub fn cosine_lr(base: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return base * step as f64 / warmup.max(1) as f64;
    }
    let progress = (step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64;
    base * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two steps worked by hand with PyTorch's formula (lr 0.1, wd 0.01, g = 0.5 then −1).
    #[test]
    fn adamw_matches_the_pytorch_update() {
        let mut opt = AdamW::new(&[1], 0.01);
        let mut p = vec![vec![1.0f32]];
        opt.step(&mut p, &[vec![0.5]], 0.1);
        // m̂ = 0.5, v̂ = 0.25 → p = 1·(1 − 0.001) − 0.1·0.5/(0.5 + 1e-8)
        let want1 = 0.999f64 - 0.1 * 0.5 / (0.5 + 1e-8);
        assert!((p[0][0] as f64 - want1).abs() < 1e-6, "{}", p[0][0]);
        opt.step(&mut p, &[vec![-1.0]], 0.1);
        let m = 0.9 * 0.05 - 0.1;
        let v = 0.999 * 0.00025 + 0.001 * 1.0;
        let (mh, vh) = (m / (1.0 - 0.81), v / (1.0 - 0.999f64.powi(2)));
        let want2 = want1 * 0.999 - 0.1 * mh / (vh.sqrt() + 1e-8);
        assert!(
            (p[0][0] as f64 - want2).abs() < 1e-6,
            "{} vs {want2}",
            p[0][0]
        );
    }

    #[test]
    fn cosine_schedule_warms_up_then_decays_to_zero() {
        assert_eq!(cosine_lr(1.0, 0, 10, 110), 0.0);
        assert!((cosine_lr(1.0, 5, 10, 110) - 0.5).abs() < 1e-12);
        assert!((cosine_lr(1.0, 10, 10, 110) - 1.0).abs() < 1e-12);
        assert!((cosine_lr(1.0, 60, 10, 110) - 0.5).abs() < 1e-12);
        assert!(cosine_lr(1.0, 110, 10, 110).abs() < 1e-12);
    }
}
