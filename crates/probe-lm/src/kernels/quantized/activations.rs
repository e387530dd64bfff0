//! An activation row as the quantized dot-product kernels read it (the portable ones in `dot`
//! and the x86 ones), in its own module so that neither kernel file imports the other's types.

/// One activation row with the sums of each run of 16 of its values.
pub(super) struct Activations<'a> {
    pub(super) x: &'a [f32],
    pub(super) sums16: Vec<f32>,
}

impl<'a> Activations<'a> {
    pub(super) fn new(x: &'a [f32]) -> Self {
        let sums16 = x.chunks(16).map(|c| c.iter().sum()).collect();
        Activations { x, sums16 }
    }

    /// Sum of the 32 values of block `b`.
    #[inline(always)]
    pub(super) fn sum32(&self, b: usize) -> f32 {
        self.sums16[2 * b] + self.sums16[2 * b + 1]
    }
}
