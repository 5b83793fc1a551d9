//! Shuffle significance of spatial scores: each unit's spike train shifted
//! circularly in time over the trajectory's span (t ↦ t0 + ((t − t0) + s) mod T,
//! numpy's `mod`), its rate map made again as `compute_spatial_rates` makes it
//! (the trajectory's occupancy and its smoothing are shared by every shift),
//! and scored. Maps are made a batch at a time (spike counting and scoring in
//! parallel, the batch smoothed in one action), so memory holds one batch of
//! maps plus the scores, whatever the number of shuffles.

use rayon::prelude::*;
use voxfield_core::work::Watch;
use voxfield_core::{Error, Result};

use crate::cells::{Autocorrelation, BorderScore, GridScore, Metric};
use crate::encoding::{check_spike_times, Kde, KdeRates, SpikeBinner};
use crate::scores::Probabilities;
use crate::trajectory::OccupancyOptions;
use crate::Environment;

/// Shuffled maps one call may make (units × shuffles): each score keeps 8
/// bytes per map, so 2^26 maps hold 512 MiB per score.
pub const MAX_SHUFFLED_MAPS: usize = 1 << 26;

/// Shifts are at most this many sessions long (so (t − t0) + s keeps about
/// 10^-10 of a session's resolution).
const MAX_SHIFT_SPANS: f64 = 1e6;

/// Maps smoothed at once (and their counts, rates and work space held).
const BATCH: usize = 256;

/// The scores to compute for every map, with their parameters.
#[derive(Clone, Debug, Default)]
pub struct ScoreSet {
    /// Skaggs information in this logarithm base.
    pub information: Option<f64>,
    pub sparsity: bool,
    /// Grid score with these inner and outer annulus fractions.
    pub grid: Option<(f64, f64)>,
    /// Border score with this threshold, minimum area and metric.
    pub border: Option<(f64, f64, Metric)>,
}

impl ScoreSet {
    /// The scores' names, in the order their rows come out.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = vec![];
        if self.information.is_some() {
            v.push("spatial_information");
        }
        if self.sparsity {
            v.push("sparsity");
        }
        if self.grid.is_some() {
            v.push("grid_score");
        }
        if self.border.is_some() {
            v.push("border_score");
        }
        v
    }
}

/// How rate maps are made: the trajectory options and the KDE smoothing.
pub struct RateMaps<'a> {
    pub occupancy: &'a OccupancyOptions,
    pub kernel: Kde,
    pub bandwidth: f64,
    pub min_occupancy: f64,
}

/// Scores of the unshifted maps and of every shifted one.
#[derive(Debug)]
pub struct Shuffled {
    pub names: Vec<&'static str>,
    /// Per score, per unit.
    pub observed: Vec<f64>,
    /// Per score, per unit, per shuffle.
    pub null: Vec<f64>,
}

/// neurospatial's one-sided p-value (k + 1) / (n + 1) over the finite null
/// scores, k those at least the observed; None when the observation or every
/// null score is not finite.
pub fn p_value_greater(observed: f64, null: &[f64]) -> Option<f64> {
    let finite = null.iter().filter(|v| v.is_finite());
    let (n, k) = finite.fold((0usize, 0usize), |(n, k), &v| {
        (n + 1, k + usize::from(v >= observed))
    });
    (observed.is_finite() && n > 0).then(|| (k + 1) as f64 / (n + 1) as f64)
}

/// numpy's `mod` for floats: the remainder with the divisor's sign.
pub(crate) fn np_mod(a: f64, b: f64) -> f64 {
    let r = a % b;
    if r != 0.0 && ((r < 0.0) != (b < 0.0)) {
        r + b
    } else {
        r
    }
}

/// Scorers built once per call, with their per-thread work space.
struct Scorers<'a> {
    set: &'a ScoreSet,
    occupancy: Probabilities,
    autocorrelation: Option<(Autocorrelation, GridScore)>,
    border: Option<BorderScore>,
}

impl<'a> Scorers<'a> {
    fn new(env: &Environment, set: &'a ScoreSet, occupancy: &'a [f64]) -> Result<Self> {
        let autocorrelation = match set.grid {
            Some((inner, outer)) => {
                let ac = Autocorrelation::new(env)?;
                let (h, w) = ac.shape();
                Some((ac, GridScore::new(h, w, inner, outer)?))
            }
            None => None,
        };
        Ok(Self {
            set,
            occupancy: Probabilities::new(occupancy),
            autocorrelation,
            border: set.border.map(|(_, _, m)| BorderScore::new(env, m)),
        })
    }

    /// Work space for one thread: an autocorrelation scratch and two buffers.
    fn scratch(&self) -> (Option<crate::cells::Scratch>, Vec<f64>, Vec<f64>) {
        let s = self.autocorrelation.as_ref().map(|(ac, _)| ac.scratch());
        let cells = self.autocorrelation.as_ref().map_or(0, |(ac, _)| {
            let (h, w) = ac.shape();
            h * w
        });
        (s, vec![0.0; cells], vec![])
    }

    /// The scores of one map into `out` (one per score, in `names` order).
    fn score(
        &self,
        rate: &[f64],
        work: &mut (Option<crate::cells::Scratch>, Vec<f64>, Vec<f64>),
        out: &mut [f64],
    ) {
        let mut k = 0;
        let mut put = |v: f64| {
            out[k] = v;
            k += 1;
        };
        if let Some(base) = self.set.information {
            put(self.occupancy.information(rate, base));
        }
        if self.set.sparsity {
            put(self.occupancy.sparsity(rate));
        }
        if let Some((ac, grid)) = &self.autocorrelation {
            let (scratch, buf, rotated) = work;
            let scratch = scratch.as_mut().expect("a grid scratch");
            put(match ac.compute(rate, scratch, buf) {
                Ok(()) => grid.score(buf, rotated),
                Err(_) => f64::NAN,
            });
        }
        if let (Some(b), Some((threshold, min_area, _))) = (&self.border, self.set.border) {
            put(b.score(rate, threshold, min_area));
        }
    }
}

impl Environment {
    /// The scores of every unit's map (`observed`) and of its map with the
    /// spike train shifted by each of `shifts` (units × shuffles, row-major,
    /// seconds; any finite value, taken modulo the trajectory's span).
    pub fn shuffle_scores(
        &self,
        spikes: &[&[f64]],
        times: &[f64],
        positions: &[f64],
        maps: &RateMaps,
        shifts: &[f64],
        set: &ScoreSet,
        watch: &Watch,
    ) -> Result<Shuffled> {
        let units = spikes.len();
        let names = set.names();
        if names.is_empty() {
            return Err(Error::invalid("no score to shuffle"));
        }
        if units == 0 || !shifts.len().is_multiple_of(units) {
            return Err(Error::invalid(format!(
                "{} shifts for {units} units: expected units x shuffles",
                shifts.len()
            )));
        }
        let shuffles = shifts.len() / units;
        if shifts.len() > MAX_SHUFFLED_MAPS {
            return Err(Error::invalid(format!(
                "{units} units x {shuffles} shuffles is over {MAX_SHUFFLED_MAPS} shuffled maps per call; split the units or the shuffles"
            )));
        }
        if let Some(s) = shifts.iter().find(|s| !s.is_finite()) {
            return Err(Error::invalid(format!("shifts must be finite, got {s}")));
        }
        check_spike_times(spikes)?;
        let binner = SpikeBinner::new(self, times, positions, maps.occupancy)?;
        let Some((t0, t1)) = binner.span().filter(|(a, b)| b > a) else {
            return Err(Error::invalid(
                "shuffles need a trajectory spanning some time (two or more distinct times)",
            ));
        };
        let span = t1 - t0;
        // (t − t0) + s must keep the spike times' precision: a shift past 10^6
        // sessions would round every spike onto a few times.
        if let Some(s) = shifts.iter().find(|s| s.abs() > MAX_SHIFT_SPANS * span) {
            return Err(Error::invalid(format!(
                "shift {s} s is over {MAX_SHIFT_SPANS:e} times the session ({span} s): its remainder would lose the spike times' precision"
            )));
        }
        let maker = KdeRates::new(
            self,
            maps.kernel,
            &binner.occupancy,
            maps.bandwidth,
            maps.min_occupancy,
        )?;
        let scorers = Scorers::new(self, set, &binner.occupancy)?;
        let (n, k) = (self.n_bins(), names.len());
        let batch = maker.group(BATCH).min(BATCH);

        // Map m: unit m / (shuffles + 1), shift (m % (shuffles + 1)) − 1, or
        // none for the unit's own map.
        let per_unit = shuffles + 1;
        let total = units * per_unit;
        let mut scores = vec![0.0; total * k];
        let mut counts = vec![0.0; batch * n];
        let mut rates = vec![0.0; batch * n];
        for first in (0..total).step_by(batch) {
            watch.check()?;
            let m = batch.min(total - first);
            counts[..m * n]
                .par_chunks_mut(n.max(1))
                .enumerate()
                .for_each(|(i, c)| {
                    c.fill(0.0);
                    let (u, j) = ((first + i) / per_unit, (first + i) % per_unit);
                    let train = spikes[u].iter().copied();
                    if j == 0 {
                        binner.count(train, c);
                    } else {
                        let s = shifts[u * shuffles + j - 1];
                        binner.count(train.map(|t| t0 + np_mod((t - t0) + s, span)), c);
                    }
                });
            maker.rates(&counts[..m * n], &mut rates[..m * n])?;
            scores[first * k..(first + m) * k]
                .par_chunks_mut(k)
                .zip(rates[..m * n].par_chunks(n.max(1)))
                .for_each_init(
                    || scorers.scratch(),
                    |work, (out, r)| scorers.score(r, work, out),
                );
            watch.report("shuffles", (first + m) as u64, total as u64);
        }
        // Map-major scores → per score, per unit, (observed, shuffles).
        let mut observed = vec![0.0; k * units];
        let mut null = vec![0.0; k * units * shuffles];
        for u in 0..units {
            for q in 0..k {
                observed[q * units + u] = scores[(u * per_unit) * k + q];
                for j in 0..shuffles {
                    null[(q * units + u) * shuffles + j] = scores[(u * per_unit + 1 + j) * k + q];
                }
            }
        }
        Ok(Shuffled {
            names,
            observed,
            null,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::np_mod;

    #[test]
    fn np_mod_takes_the_divisor_sign() {
        assert_eq!(np_mod(7.5, 2.0), 1.5);
        assert_eq!(np_mod(-0.5, 2.0), 1.5);
        assert_eq!(np_mod(4.0, 2.0), 0.0);
    }
}
