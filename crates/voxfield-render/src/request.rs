//! A whole render request as every front end states it (mode, camera,
//! transfer function, turntable) and its checks, so the CLI and Python refuse
//! the same things with the same words.

use voxfield_core::work::Watch;
use voxfield_core::{Error, Result};

use crate::{
    AxisView, Background, CameraSpec, Colormap, Frame, Mode, Opacity, Picture, Projection, Scene,
    Transfer, MAX_PIXELS,
};

/// Frames a turntable may have.
pub const MAX_FRAMES: usize = 3600;

/// What the frames become.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    /// 8-bit pictures (`.png`, `.apng`, `.gif`; uint8 arrays).
    #[default]
    Picture,
    /// The frames' float values (`.npy`; float32 arrays): a scalar mode's own
    /// values, or premultiplied RGBA. Window, colormap and background make
    /// pictures, so they are refused for scalar values.
    Values,
}

/// What to render.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub mode: Mode,
    pub camera: CameraSpec,
    /// None: the field's value range.
    pub window: Option<[f64; 2]>,
    /// None: gray.
    pub colormap: Option<Colormap>,
    /// None: the default ramp (dvr only).
    pub opacity: Option<Opacity>,
    pub step: f64,
    pub shading: bool,
    /// A turntable: frame `i` adds `360 i / frames` degrees of azimuth.
    pub frames: usize,
    /// None: black (pictures only).
    pub background: Option<Background>,
    pub output: Output,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            mode: Mode::Dvr,
            camera: CameraSpec::default(),
            window: None,
            colormap: None,
            opacity: None,
            step: 1.0,
            shading: false,
            frames: 1,
            background: None,
            output: Output::Picture,
        }
    }
}

/// The frames of a request and the transfer function they were made with.
pub struct Rendered {
    pub transfer: Transfer,
    pub frames: Vec<Frame>,
}

impl Request {
    /// Refuses options that do not apply to the mode, and bad counts.
    pub fn check(&self) -> Result<()> {
        if self.shading && self.mode != Mode::Dvr {
            return Err(Error::invalid(format!(
                "shading applies to mode dvr (iso is always shaded; {} is not lit)",
                self.mode
            )));
        }
        if self.opacity.is_some() && self.mode != Mode::Dvr {
            return Err(Error::invalid(format!(
                "opacity applies to mode dvr, not {}",
                self.mode
            )));
        }
        if let Some(w) = self.window {
            crate::transfer::check_window(w)?;
        }
        self.check_output()?;
        crate::transfer::check_step(self.step)?;
        if !(1..=MAX_FRAMES).contains(&self.frames) {
            return Err(Error::invalid(format!(
                "frames {}: give 1 to {MAX_FRAMES}",
                self.frames
            )));
        }
        Ok(())
    }

    /// Refuses what only pictures use when the output is float values.
    fn check_output(&self) -> Result<()> {
        if self.output != Output::Values {
            return Ok(());
        }
        if self.background.is_some() {
            return Err(Error::invalid(
                "background applies to pictures (png, apng, gif; uint8), not to float values",
            ));
        }
        let picture_only = [
            ("window", self.window.is_some()),
            ("colormap", self.colormap.is_some()),
        ];
        if let Some((name, _)) = picture_only.iter().find(|(_, given)| *given) {
            if self.mode.is_scalar() {
                return Err(Error::invalid(format!(
                    "{name} applies to pictures of mode {} (png, apng, gif; uint8); its float values are the field's own",
                    self.mode
                )));
            }
        }
        Ok(())
    }

    /// How this request's frames become 8-bit pixels.
    pub fn picture<'a>(&self, transfer: &'a Transfer) -> Picture<'a> {
        Picture {
            transfer,
            background: self.background.unwrap_or(Background::BLACK).rgb(),
        }
    }

    /// The axis view this request is, when it is the exact voxel grid (no
    /// size, angles or zoom, orthographic, step 1, one frame, a scalar mode):
    /// then it is a plain reduction of the voxels along that axis.
    pub fn exact_axis(&self) -> Option<AxisView> {
        let c = &self.camera;
        let exact = self.mode.is_scalar()
            && self.frames == 1
            && self.step == 1.0
            && c.size.is_none()
            && c.is_axis_aligned()
            && c.zoom == 1.0
            && c.projection == Projection::Ortho;
        exact.then_some(c.view)
    }

    /// The transfer function over `scene` (its value range as the default window).
    pub fn transfer(&self, scene: &Scene) -> Result<Transfer> {
        self.transfer_for(scene.value_range())
    }

    /// The transfer function for a field whose values span `range` (the
    /// default window).
    pub fn transfer_for(&self, range: Option<[f64; 2]>) -> Result<Transfer> {
        let window = match self.window {
            Some(w) => w,
            None => match range {
                Some([lo, hi]) if lo < hi => [lo, hi],
                // A constant field: a window of width 1 around its value.
                Some([v, _]) => [v - 0.5, v + 0.5],
                None => {
                    return Err(Error::invalid(
                        "the field has no finite value to set a window from: give a window",
                    ))
                }
            },
        };
        let opacity = self.opacity.clone().unwrap_or_default();
        let cmap = self.colormap.unwrap_or(Colormap::Gray);
        let mut tf = Transfer::new(window, cmap, opacity, self.step)?;
        tf.shading = self.shading;
        Ok(tf)
    }

    /// Renders every frame (sizes checked against [`MAX_PIXELS`] before any).
    pub fn render(&self, scene: &Scene, watch: &Watch) -> Result<Rendered> {
        self.check()?;
        let cameras = (0..self.frames)
            .map(|i| {
                let mut spec = self.camera.clone();
                spec.azimuth += 360.0 * i as f64 / self.frames as f64;
                scene.camera(&spec)
            })
            .collect::<Result<Vec<_>>>()?;
        let pixels = cameras[0].width * cameras[0].height;
        if pixels.saturating_mul(self.frames) > MAX_PIXELS {
            return Err(Error::invalid(format!(
                "{} frame(s) of {}x{} pixels are over the {MAX_PIXELS} pixels a render may hold",
                self.frames, cameras[0].width, cameras[0].height
            )));
        }
        // The work is checked before the default window is looked for (that
        // reads the field).
        scene.check_work(pixels, self.step)?;
        let transfer = self.transfer(scene)?;
        let frames = cameras
            .iter()
            .map(|cam| scene.render(cam, self.mode, &transfer, watch))
            .collect::<Result<Vec<_>>>()?;
        Ok(Rendered { transfer, frames })
    }
}
