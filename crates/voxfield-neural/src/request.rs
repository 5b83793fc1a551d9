//! What a compression request resolves to: one rule for ratios, explicit network
//! sizes and initialisations, the same from the CLI, Python and Rust.

use voxfield_core::{Error, Result};

use crate::train::model_bytes;
use crate::{CompressOptions, MetaOptions, Net};

/// Network sizes given explicitly (`None`: the default, or what a ratio picks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sizes {
    pub log2_table: Option<u32>,
    pub levels: Option<usize>,
    pub width: Option<usize>,
}

impl Sizes {
    /// The names of the sizes given, for messages.
    fn given(&self) -> Vec<&'static str> {
        [
            ("log2_table", self.log2_table.is_some()),
            ("levels", self.levels.is_some()),
            ("width", self.width.is_some()),
        ]
        .iter()
        .filter(|(_, g)| *g)
        .map(|(n, _)| *n)
        .collect()
    }
}

impl CompressOptions {
    /// These options with the network sizes given (unset ones unchanged).
    pub fn with_sizes(mut self, sizes: Sizes) -> Self {
        self.log2_table = sizes.log2_table.unwrap_or(self.log2_table);
        self.levels = sizes.levels.unwrap_or(self.levels);
        self.width = sizes.width.unwrap_or(self.width);
        self
    }

    /// Resolves a request on a volume of `shape` taking `native` bytes:
    /// - `init` (a learned initialisation) fixes the network's shape: sizes
    ///   are refused, and a ratio only bounds the file;
    /// - a ratio picks the largest network whose file is at most
    ///   `native / ratio` bytes ([`for_ratio`]); sizes given beside it replace
    ///   what it picks, and the bound stays: a network that cannot fit it is
    ///   refused here, before training.
    pub fn for_request(
        self,
        shape: [usize; 3],
        native: u64,
        ratio: Option<f64>,
        sizes: Sizes,
        init: Option<Net>,
    ) -> Result<CompressOptions> {
        if let Some(r) = ratio {
            check_ratio(r)?;
        }
        if let Some(net) = init {
            let given = sizes.given();
            if !given.is_empty() {
                return Err(Error::invalid(format!(
                    "init fixes the network's shape, so {} cannot be given with it",
                    given.join(", ")
                )));
            }
            return Ok(CompressOptions {
                init: Some(net),
                max_bytes: ratio.map(|r| (native as f64 / r) as u64),
                ..self
            });
        }
        let Some(r) = ratio else {
            return Ok(self.with_sizes(sizes));
        };
        let picked = for_ratio(&self, shape, native, r)?;
        if sizes == Sizes::default() {
            return Ok(picked);
        }
        let opts = picked.with_sizes(sizes);
        opts.check(shape)?;
        let finest = *shape.iter().max().expect("3 axes") as u32;
        let need = model_bytes(
            &CompressOptions {
                bits: fewest_bits(opts.bits),
                ..opts.clone()
            },
            finest,
        );
        let budget = opts.max_bytes.unwrap_or(u64::MAX);
        if need > budget {
            return Err(Error::invalid(format!(
                "ratio {r} bounds the model file at {budget} bytes, but the network of {} \
                 (2^{} tables, {} levels, width {}) takes about {need}: give a smaller \
                 network or drop the sizes to let the ratio choose",
                sizes.given().join(", "),
                opts.log2_table,
                opts.levels,
                opts.width
            )));
        }
        Ok(opts)
    }
}

impl MetaOptions {
    /// A meta-training request: the network of `sizes` (defaults elsewhere),
    /// `batch` samples per inner Adam step (None: what compress takes),
    /// `inner_steps` (K) of them on one volume per outer step, `meta_steps`
    /// (M) outer steps of size `meta_lr`.
    pub fn for_request(
        sizes: Sizes,
        batch: Option<usize>,
        seed: u64,
        inner_steps: usize,
        meta_steps: usize,
        meta_lr: f32,
    ) -> MetaOptions {
        let net = CompressOptions {
            batch,
            seed,
            ..Default::default()
        };
        MetaOptions {
            net: net.with_sizes(sizes),
            inner_steps,
            meta_steps,
            meta_lr,
        }
    }
}

fn check_ratio(ratio: f64) -> Result<()> {
    if ratio.is_finite() && ratio > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "ratio {ratio} must be a positive number"
        )))
    }
}

/// The MLP width a ratio starts from: the base's while its f16 weights take
/// at most a tenth of the file, else (at most) 32. On the MNI T1 (10 epochs):
/// at CR 60 (2^13 tables) width 64 gave 37.40 dB against 36.88 dB for 32; at
/// CR 120 (2^12 tables) 32 gave 34.62 dB against 34.33 dB for 64 — there the
/// 8 KB the narrower MLP saves buy finer table codes. Width 32 also decodes
/// with a third of the multiply–adds.
fn ratio_width(base: &CompressOptions, budget: f64) -> usize {
    let inputs = base.levels * base.features;
    let mlp_bytes = 2 * crate::Mlp::new(inputs, base.width, base.hidden).n_params;
    if mlp_bytes as f64 <= budget / 10.0 {
        base.width
    } else {
        base.width.min(32)
    }
}

/// The largest configuration whose model file is at most `native / ratio` bytes:
/// the table size first (2^24 down to 2^4, sized at 3.5 coded bits per entry
/// unless `base.bits` is 16), then fewer levels and a narrower MLP. After
/// training, the finest quantisation step (up to `base.bits`) whose file fits
/// `max_bytes` is kept.
/// Errors when even the smallest network is too big.
pub fn for_ratio(
    base: &CompressOptions,
    shape: [usize; 3],
    native: u64,
    ratio: f64,
) -> Result<CompressOptions> {
    check_ratio(ratio)?;
    let budget = native as f64 / ratio;
    let finest = *shape.iter().max().expect("3 axes") as u32;
    let width = ratio_width(base, budget);
    for (levels, width) in [(base.levels, width), (12, width), (8, 16), (4, 8)] {
        for t in (4..=24).rev() {
            let mut o = CompressOptions {
                log2_table: t,
                levels,
                width,
                bits: fewest_bits(base.bits),
                max_bytes: Some(budget as u64),
                ..base.clone()
            };
            if o.check(shape).is_ok() && (model_bytes(&o, finest) as f64) <= budget {
                // The most bits that fit are found after training, on the real file.
                o.bits = base.bits;
                return Ok(o);
            }
        }
    }
    let smallest = CompressOptions {
        log2_table: 4,
        levels: 4,
        width: 8,
        bits: fewest_bits(base.bits),
        ..base.clone()
    };
    Err(Error::invalid(format!(
        "no configuration reaches ratio {ratio}: the smallest model takes {} bytes, the volume has {native}",
        model_bytes(&smallest, finest)
    )))
}

/// The table bits `for_ratio` sizes tables at (coded at ~bits − 0.5 each): 4,
/// or fewer if asked, or f16.
fn fewest_bits(bits: u32) -> u32 {
    if bits == 16 {
        16
    } else {
        bits.min(4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: [usize; 3] = [64, 64, 64];
    const NATIVE: u64 = 64 * 64 * 64 * 4;

    fn net() -> Net {
        let o = CompressOptions::default().with_sizes(Sizes {
            log2_table: Some(6),
            levels: Some(4),
            width: Some(8),
        });
        Net::new(crate::train::config(&o, SHAPE), o.width, o.hidden, 1)
    }

    #[test]
    fn a_ratio_narrows_the_mlp_where_its_weights_would_crowd_the_file() {
        // The MNI T1's shape: at CR 60 the 12 KB of a 64-wide MLP are under a
        // tenth of the file, at CR 120 and 250 they are not.
        let (shape, native) = ([197, 233, 189], 197 * 233 * 189);
        let base = CompressOptions::default();
        let width = |r: f64| for_ratio(&base, shape, native, r).unwrap().width;
        assert_eq!((width(60.0), width(120.0), width(250.0)), (64, 32, 32));
        // A width given with the ratio is kept.
        let given = Sizes {
            width: Some(64),
            ..Default::default()
        };
        let o = base
            .for_request(shape, native, Some(120.0), given, None)
            .unwrap();
        assert_eq!(o.width, 64);
    }

    #[test]
    fn one_rule_for_ratio_sizes_and_init() {
        let base = CompressOptions::default();
        let small = Sizes {
            log2_table: Some(8),
            ..Default::default()
        };
        // Sizes alone set the network; no file bound.
        let o = base
            .clone()
            .for_request(SHAPE, NATIVE, None, small, None)
            .unwrap();
        assert_eq!((o.log2_table, o.max_bytes), (8, None));
        // A ratio alone picks a network under its bound.
        let r = base
            .clone()
            .for_request(SHAPE, NATIVE, Some(20.0), Sizes::default(), None)
            .unwrap();
        assert_eq!(r.max_bytes, Some(NATIVE / 20));
        // Sizes with a ratio replace what it picks and keep the bound...
        let o = base
            .clone()
            .for_request(SHAPE, NATIVE, Some(20.0), small, None)
            .unwrap();
        assert_eq!((o.log2_table, o.max_bytes), (8, Some(NATIVE / 20)));
        // ...or are refused when that network cannot fit it.
        let big = Sizes {
            log2_table: Some(20),
            ..Default::default()
        };
        let e = base
            .clone()
            .for_request(SHAPE, NATIVE, Some(20.0), big, None)
            .unwrap_err();
        assert!(
            e.to_string().contains("log2_table") && e.to_string().contains("bounds"),
            "{e}"
        );
        // An initialisation fixes the shape: sizes refused, a ratio only bounds the file.
        let e = base
            .clone()
            .for_request(SHAPE, NATIVE, None, small, Some(net()))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("init fixes the network's shape, so log2_table"),
            "{e}"
        );
        let o = base
            .clone()
            .for_request(SHAPE, NATIVE, Some(10.0), Sizes::default(), Some(net()))
            .unwrap();
        assert!(o.init.is_some() && o.max_bytes == Some(NATIVE / 10));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = base
                .clone()
                .for_request(SHAPE, NATIVE, Some(bad), Sizes::default(), None)
                .unwrap_err();
            assert!(e.to_string().contains("must be a positive number"), "{e}");
        }
    }

    #[test]
    fn losses_parse_by_either_name_and_unknown_ones_are_named() {
        assert_eq!("MSE".parse::<crate::Loss>().unwrap(), crate::Loss::L2);
        assert_eq!("l1".parse::<crate::Loss>().unwrap(), crate::Loss::L1);
        let e = "l3".parse::<crate::Loss>().unwrap_err().to_string();
        assert!(e.contains("unknown loss 'l3'"), "{e}");
    }
}
