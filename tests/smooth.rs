//! Temporal smoothing of predictions: window sums, hysteresis, threshold; and the frame stride.

use shiftlive::online::{FrameStride, Smoother, SmoothingOptions};

fn onehot(class: usize, classes: usize, value: f32) -> Vec<f32> {
    (0..classes)
        .map(|c| if c == class { value } else { 0.0 })
        .collect()
}

#[test]
fn the_window_sums_the_last_k_logits() {
    let mut s = Smoother::new(SmoothingOptions {
        window: 3,
        hysteresis: false,
        threshold: 0.0,
        top_k: 2,
    });
    s.push(&onehot(0, 3, 5.0));
    s.push(&onehot(0, 3, 5.0));
    // Class 1 is stronger in this frame but the window still favours class 0 (10 vs 6).
    let p = s.push(&onehot(1, 3, 6.0));
    assert_eq!(p.label, Some(0));
    // Scores are the softmax of the mean logits: (10/3, 2, 0).
    let expected = {
        let e = [(10.0f32 / 3.0).exp(), 2f32.exp(), 1.0];
        e[0] / e.iter().sum::<f32>()
    };
    assert!(
        (p.score - expected).abs() < 1e-6,
        "{} vs {expected}",
        p.score
    );
    assert_eq!(p.top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![0, 1]);
    // One more frame of class 1 pushes the first frame out: (5, 12) -> class 1.
    let p = s.push(&onehot(1, 3, 6.0));
    assert_eq!(p.label, Some(1));
}

#[test]
fn hysteresis_waits_for_two_agreeing_decisions() {
    let mut s = Smoother::new(SmoothingOptions {
        window: 1,
        hysteresis: true,
        threshold: 0.0,
        top_k: 1,
    });
    assert_eq!(
        s.push(&onehot(0, 2, 3.0)).label,
        Some(0),
        "the first decision is shown at once"
    );
    assert_eq!(
        s.push(&onehot(1, 2, 3.0)).label,
        Some(0),
        "one flip is not enough"
    );
    assert_eq!(s.push(&onehot(0, 2, 3.0)).label, Some(0));
    assert_eq!(s.push(&onehot(1, 2, 3.0)).label, Some(0));
    assert_eq!(
        s.push(&onehot(1, 2, 3.0)).label,
        Some(1),
        "two agreeing decisions switch"
    );
    s.reset();
    assert_eq!(
        s.push(&onehot(0, 2, 3.0)).label,
        Some(0),
        "reset forgets the history"
    );
}

#[test]
fn a_threshold_withholds_unsure_labels() {
    let mut s = Smoother::new(SmoothingOptions {
        window: 1,
        hysteresis: false,
        threshold: 0.9,
        top_k: 3,
    });
    let p = s.push(&[1.0, 0.9, 0.8]);
    assert_eq!(p.label, None);
    assert_eq!(p.score, 0.0);
    assert_eq!(p.top.len(), 3);
    let p = s.push(&[9.0, 0.0, 0.0]);
    assert_eq!(p.label, Some(0));
    assert!(p.score > 0.9);
}

#[test]
fn the_stride_takes_every_kth_frame() {
    let mut stride = FrameStride::new(3);
    let taken: Vec<bool> = (0..7).map(|_| stride.take()).collect();
    assert_eq!(taken, [true, false, false, true, false, false, true]);
    stride.reset();
    assert!(stride.take());
}

#[test]
fn new_settings_apply_to_the_next_frame_and_keep_the_history() {
    let mut s = Smoother::new(SmoothingOptions {
        window: 4,
        hysteresis: false,
        threshold: 0.0,
        top_k: 3,
    });
    for _ in 0..3 {
        s.push(&onehot(0, 3, 5.0));
    }
    // A window of 2 keeps the newest row only, before the next push: (5, 6) -> class 1 wins.
    s.set_options(SmoothingOptions {
        window: 2,
        hysteresis: false,
        threshold: 0.0,
        top_k: 1,
    });
    let p = s.push(&onehot(1, 3, 6.0));
    assert_eq!(p.label, Some(1));
    assert_eq!(p.top.len(), 1);
    // A threshold above the best score withholds the label; the history stays (a wider window
    // sums what is kept: (5, 6, 0) over 3 frames -> the softmax of (5/3, 2, 0)).
    s.set_options(SmoothingOptions {
        window: 3,
        hysteresis: false,
        threshold: 0.99,
        top_k: 3,
    });
    let p = s.push(&onehot(2, 3, 0.0));
    assert_eq!(p.label, None);
    let mean = [5.0f32 / 3.0, 2.0, 0.0];
    let total: f32 = mean.iter().map(|m| m.exp()).sum();
    assert!(
        (p.top[0].1 - 2f32.exp() / total).abs() < 1e-6,
        "{:?}",
        p.top
    );
    assert_eq!(p.top[0].0, 1);
}
