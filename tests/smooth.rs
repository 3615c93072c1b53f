//! Temporal smoothing of predictions: window sums, hysteresis, threshold; and the frame stride.

use shiftlive::online::{FrameStride, LabelState, Smoother, SmoothingOptions};

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
        ..Default::default()
    });
    // Warming up: two of three frames summed, no label yet.
    let p = s.push(&onehot(0, 3, 5.0));
    assert_eq!(p.state, LabelState::WarmingUp { frames: 1, of: 3 });
    assert_eq!((p.label, p.score), (None, 0.0));
    let p = s.push(&onehot(0, 3, 5.0));
    assert_eq!(p.state, LabelState::WarmingUp { frames: 2, of: 3 });
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
fn hysteresis_shows_a_class_once_it_led_two_frames_and_never_a_stale_one() {
    let mut s = Smoother::new(SmoothingOptions {
        window: 1,
        hysteresis: true,
        threshold: 0.0,
        top_k: 1,
        ..Default::default()
    });
    // Frame by frame: (the frame's class, the label, its state).
    let expected = [
        (0, None, LabelState::Unconfirmed),
        (1, None, LabelState::Unconfirmed),
        (0, None, LabelState::Unconfirmed),
        (0, Some(0), LabelState::Confirmed),
        (1, None, LabelState::Unconfirmed),
        (1, Some(1), LabelState::Confirmed),
        (1, Some(1), LabelState::Confirmed),
    ];
    for (i, (class, label, state)) in expected.into_iter().enumerate() {
        let p = s.push(&onehot(class, 2, 3.0));
        assert_eq!((p.label, p.state), (label, state), "frame {i}");
        // The label is the first bar, with its score, or there is none.
        match p.label {
            Some(c) => assert_eq!((c, p.score), p.top[0]),
            None => assert_eq!(p.score, 0.0),
        }
    }
    s.reset();
    assert_eq!(
        s.push(&onehot(1, 2, 3.0)).label,
        None,
        "reset forgets the previous decision"
    );
}

#[test]
fn a_span_in_ms_becomes_frames_at_the_processed_interval() {
    let options = SmoothingOptions {
        window: 12,
        window_ms: Some(500.0),
        ..Default::default()
    };
    // Stride 4 at 25 fps: 160 ms between processed frames -> 3 frames; 25 fps -> 13 (12.5 up).
    assert_eq!(options.frames_at(Some(160.0)), 3);
    assert_eq!(options.frames_at(Some(40.0)), 13);
    assert_eq!(options.frames_at(Some(10_000.0)), 1);
    assert_eq!(
        options.frames_at(None),
        12,
        "frames until the interval is known"
    );
    let mut s = Smoother::new(options);
    assert_eq!(s.window(), 12);
    for _ in 0..12 {
        s.push(&onehot(0, 2, 1.0));
    }
    // Learning the interval shrinks the window at once (the newest rows kept), no new warm-up.
    s.set_frame_interval_ms(160.0);
    assert_eq!(s.window(), 3);
    let p = s.push(&onehot(1, 2, 1.0));
    assert_eq!(p.window, 3);
    assert_eq!(p.state, LabelState::Confirmed);
    assert_eq!(p.label, Some(0), "two of the three frames are class 0");
}

#[test]
fn a_threshold_withholds_unsure_labels() {
    let mut s = Smoother::new(SmoothingOptions {
        window: 1,
        hysteresis: false,
        threshold: 0.9,
        top_k: 3,
        ..Default::default()
    });
    let p = s.push(&[1.0, 0.9, 0.8]);
    assert_eq!(p.label, None);
    assert_eq!(p.state, LabelState::BelowThreshold);
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
        ..Default::default()
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
        ..Default::default()
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
        ..Default::default()
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
