//! What can stop a data-parallel job: a launch environment that cannot be right, a rendezvous
//! that fails or times out, a collective whose peer is gone, ranks that disagree.

/// What can go wrong between the ranks of a job.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    #[error("launch environment: {set} set but {missing} missing (set all of them, or none)")]
    HalfSet { set: String, missing: &'static str },
    #[error("launch environment: {var}='{value}' is not {want}")]
    BadVar {
        var: &'static str,
        value: String,
        want: &'static str,
    },
    #[error("launch environment ({launcher}): rank {rank} is outside a world of {world}")]
    RankOutsideWorld {
        rank: usize,
        world: usize,
        launcher: &'static str,
    },
    #[error(
        "rank {rank} of {world}: could not reach the store at {addr}:{port} within {timeout_s} s \
         (is MASTER_ADDR/MASTER_PORT right, and rank 0 started?): {message}"
    )]
    Connect {
        rank: usize,
        world: usize,
        addr: String,
        port: u16,
        timeout_s: f64,
        message: String,
    },
    #[error(
        "rank {rank} of {world}: {arrived} of {world} ranks arrived within {timeout_s} s; missing \
         rank(s) {missing} (never started, or a wrong MASTER_PORT)"
    )]
    Missing {
        rank: usize,
        world: usize,
        arrived: i64,
        missing: String,
        timeout_s: f64,
    },
    #[error(
        "rank {rank} of {world}: {count} processes claim rank {claimed}: every rank must be unique"
    )]
    DuplicateRank {
        rank: usize,
        world: usize,
        claimed: usize,
        count: i64,
    },
    #[error("rank {rank} of {world}: starting the {backend} process group: {message}")]
    Start {
        rank: usize,
        world: usize,
        backend: String,
        message: String,
    },
    #[error("rank {rank} of {world}: {op} failed, {lost}: {message}")]
    Collective {
        rank: usize,
        world: usize,
        op: &'static str,
        /// Which rank is gone, as far as this one can tell.
        lost: String,
        message: String,
    },
    #[error(
        "rank {rank} of {world}: the ranks disagree on {what}: rank {other} has {theirs}, this \
         rank {ours} (every rank must run the same command on the same data)"
    )]
    Mismatch {
        rank: usize,
        world: usize,
        what: String,
        other: usize,
        ours: String,
        theirs: String,
    },
    #[error("rank {rank} of {world}: the store: {message}")]
    Store {
        rank: usize,
        world: usize,
        message: String,
    },
    /// A tensor operation around a collective (the division of an average).
    #[error(transparent)]
    Tensor(#[from] tch::TchError),
}
