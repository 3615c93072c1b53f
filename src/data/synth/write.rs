//! Writing the synthetic data set in UCF-101's layout.
//!
//! ```text
//! DIR/<Class>/v_<Class>_gGG_cCC.avi          MJPEG (jpegenc quality 95) in AVI
//! DIR/rawframes/<Class>/v_..._cCC/img_00001.jpg   (--rawframes: the same JPEGs, one per frame)
//! DIR/ucfTrainTestlist/classInd.txt, trainlist0{1,2,3}.txt, testlist0{1,2,3}.txt
//! DIR/synth.json                               the options and every video's parameters
//! ```
//!
//! Per video: appsrc (RGB) ! jpegenc ! [tee ! multifilesink] avimux ! filesink. MJPEG is
//! intra-only, so every frame decodes on its own, quickly; at quality 95 a 64 px frame comes back
//! within 2.5 levels on average (mostly the per-frame noise smoothed). RGB goes into jpegenc
//! as is: libjpeg's own full-range JFIF conversion is what jpegdec undoes (a videoconvert to
//! I420 first gave limited-range YUV read back as full range, shifting red by 10 levels).
//!
//! Groups follow UCF-101: video i of N goes to group `1 + i * 25 / N` (spread evenly over the 25
//! groups, so every split has test videos of every class once N >= 3) and split k tests groups
//! `7(k-1)+1 ..= 7k` (split 1: g01-g07, split 2: g08-g14, split 3: g15-g21; g22-g25 always train),
//! as UCF-101's own testlists do. Videos, split files and synth.json are written to temporary
//! names and renamed when complete.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;

use super::encode::encode;
use super::{SynthClass, VideoParams, render_video};
use crate::data::{DataError, write_atomic};

/// UCF-101's number of groups per class.
pub const UCF_GROUPS: usize = 25;

/// The group (1-based) of video `index` among `per_class`.
pub fn group_of(index: usize, per_class: usize) -> usize {
    1 + index * UCF_GROUPS / per_class.max(1)
}

/// True when split `split` (1..=3) tests group `group`.
pub fn split_tests_group(split: usize, group: usize) -> bool {
    split >= 1 && (7 * split - 6..=7 * split).contains(&group)
}

#[derive(Debug, Clone, Serialize)]
pub struct SynthOptions {
    pub out: PathBuf,
    pub per_class: usize,
    pub frames: usize,
    pub width: usize,
    pub height: usize,
    pub fps: u32,
    pub seed: u64,
    pub classes: Vec<SynthClass>,
    /// Also write `rawframes/<Class>/<video>/img_%05d.jpg`.
    pub rawframes: bool,
    /// JPEG quality (1-100).
    pub quality: u8,
    /// Threads rendering and encoding (0: one per core).
    #[serde(skip)]
    pub threads: usize,
    /// Write into a folder that is not empty.
    #[serde(skip)]
    pub overwrite: bool,
}

impl SynthOptions {
    /// 40 videos of 32 frames of 64 x 64 at 25 fps for each of the nine classes.
    pub fn new(out: impl Into<PathBuf>) -> Self {
        Self {
            out: out.into(),
            per_class: 40,
            frames: 32,
            width: 64,
            height: 64,
            fps: 25,
            seed: 0,
            classes: SynthClass::ALL.to_vec(),
            rawframes: false,
            quality: 95,
            threads: 0,
            overwrite: false,
        }
    }

    fn validate(&self) -> Result<(), DataError> {
        let bad = |s: String| Err(DataError::Options(s));
        if self.per_class == 0 || self.frames == 0 {
            return bad(format!(
                "per_class ({}) and frames ({}) must be at least 1",
                self.per_class, self.frames
            ));
        }
        if self.width < 8 || self.height < 8 || self.width > 4096 || self.height > 4096 {
            return bad(format!(
                "frame size {}x{} must be within 8..=4096",
                self.width, self.height
            ));
        }
        if self.fps == 0 || !(1..=100).contains(&self.quality) {
            return bad(format!(
                "fps ({}) must be positive and quality ({}) in 1..=100",
                self.fps, self.quality
            ));
        }
        if self.classes.is_empty() {
            return bad("at least one class is needed".into());
        }
        let mut seen = self.classes.clone();
        seen.sort_by_key(|c| *c as usize);
        seen.dedup();
        if seen.len() != self.classes.len() {
            return bad(format!("classes {:?} name a class twice", self.classes));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SynthReport {
    pub out: PathBuf,
    pub classes: Vec<String>,
    pub videos: usize,
    pub frames_per_video: usize,
    /// (train, test) videos of splits 1, 2, 3.
    pub splits: [(usize, usize); 3],
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
struct VideoEntry {
    path: String,
    class: String,
    label: usize,
    group: usize,
    clip: usize,
    params: VideoParams,
}

#[derive(Serialize)]
struct Manifest<'a> {
    generator: &'static str,
    version: u32,
    options: &'a SynthOptions,
    classes: Vec<&'static str>,
    encoder: String,
    split_rule: &'static str,
    videos: Vec<VideoEntry>,
}

/// One video to make: class position, index within the class, relative path.
struct Job {
    label: usize,
    class: SynthClass,
    index: usize,
    group: usize,
    clip: usize,
    relative: String,
}

fn jobs(options: &SynthOptions) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (label, &class) in options.classes.iter().enumerate() {
        let mut clip = 0;
        for index in 0..options.per_class {
            let group = group_of(index, options.per_class);
            clip = if index > 0 && group == group_of(index - 1, options.per_class) {
                clip + 1
            } else {
                1
            };
            let name = class.name();
            jobs.push(Job {
                label,
                class,
                index,
                group,
                clip,
                relative: format!("{name}/v_{name}_g{group:02}_c{clip:02}.avi"),
            });
        }
    }
    jobs
}

fn create_dir(path: &Path) -> Result<(), DataError> {
    std::fs::create_dir_all(path).map_err(|e| DataError::io(path, e))
}

/// Generates the data set; see the module docs for the layout.
pub fn generate(options: &SynthOptions) -> Result<SynthReport, DataError> {
    let started = Instant::now();
    options.validate()?;
    let out = &options.out;
    if out.exists() {
        let mut entries = std::fs::read_dir(out).map_err(|e| DataError::io(out, e))?;
        if entries.next().is_some() && !options.overwrite {
            return Err(DataError::Io {
                path: out.clone(),
                why: "exists and is not empty (overwrite it with --force)".into(),
            });
        }
    }
    create_dir(&out.join("ucfTrainTestlist"))?;
    for class in &options.classes {
        create_dir(&out.join(class.name()))?;
    }
    let jobs = jobs(options);
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    }
    .min(jobs.len());
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<(usize, DataError)>> = Mutex::new(None);
    let params: Mutex<Vec<Option<VideoParams>>> = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(j) else { break };
                    match make_video(options, job) {
                        Ok(p) => {
                            if let Ok(mut all) = params.lock() {
                                all[j] = Some(p);
                            }
                        }
                        Err(err) => {
                            failed.store(true, Ordering::Relaxed);
                            if let Ok(mut first) = first_error.lock()
                                && first.as_ref().is_none_or(|(k, _)| j < *k)
                            {
                                *first = Some((j, err));
                            }
                        }
                    }
                }
            });
        }
    });
    if let Some((_, err)) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(err);
    }
    let params = params.into_inner().unwrap_or_else(|e| e.into_inner());
    let splits = write_splits(options, &jobs)?;
    let videos: Vec<VideoEntry> = jobs
        .iter()
        .zip(params)
        .filter_map(|(job, p)| {
            p.map(|params| VideoEntry {
                path: job.relative.clone(),
                class: job.class.name().to_string(),
                label: job.label,
                group: job.group,
                clip: job.clip,
                params,
            })
        })
        .collect();
    let manifest = Manifest {
        generator: "shiftlive synth",
        version: 1,
        options,
        classes: options.classes.iter().map(|c| c.name()).collect(),
        encoder: format!(
            "jpegenc quality={} (MJPEG from RGB) in avimux",
            options.quality
        ),
        split_rule: "video i of N in group 1 + i*25/N; split k tests groups 7(k-1)+1..=7k",
        videos,
    };
    let json = serde_json::to_string_pretty(&manifest)
        .map_err(|e| DataError::io(&out.join("synth.json"), e))?;
    write_atomic(&out.join("synth.json"), json.as_bytes())?;
    Ok(SynthReport {
        out: out.clone(),
        classes: options
            .classes
            .iter()
            .map(|c| c.name().to_string())
            .collect(),
        videos: jobs.len(),
        frames_per_video: options.frames,
        splits,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn write_splits(options: &SynthOptions, jobs: &[Job]) -> Result<[(usize, usize); 3], DataError> {
    let dir = options.out.join("ucfTrainTestlist");
    let class_ind: String = options
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} {}\n", i + 1, c.name()))
        .collect();
    write_atomic(&dir.join("classInd.txt"), class_ind.as_bytes())?;
    let mut counts = [(0, 0); 3];
    for (k, count) in counts.iter_mut().enumerate() {
        let split = k + 1;
        let (mut train, mut test) = (String::new(), String::new());
        for job in jobs {
            if split_tests_group(split, job.group) {
                test.push_str(&format!("{}\n", job.relative));
                count.1 += 1;
            } else {
                train.push_str(&format!("{} {}\n", job.relative, job.label + 1));
                count.0 += 1;
            }
        }
        write_atomic(
            &dir.join(format!("trainlist0{split}.txt")),
            train.as_bytes(),
        )?;
        write_atomic(&dir.join(format!("testlist0{split}.txt")), test.as_bytes())?;
    }
    Ok(counts)
}

fn make_video(options: &SynthOptions, job: &Job) -> Result<VideoParams, DataError> {
    let (params, frames) = render_video(
        options.seed,
        job.class,
        job.index,
        options.frames,
        options.width,
        options.height,
    );
    let path = options.out.join(&job.relative);
    let rawframes = if options.rawframes {
        let dir = options
            .out
            .join("rawframes")
            .join(Path::new(&job.relative).with_extension(""));
        create_dir(&dir)?;
        Some(dir)
    } else {
        None
    };
    encode(options, &frames, &path, rawframes.as_deref())?;
    Ok(params)
}
