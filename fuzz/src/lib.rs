//! What the fuzz targets share.

use std::sync::OnceLock;

/// Runs `future` to its end on one tokio runtime kept for the whole fuzzing run (the async
/// readers under test need one; making one per input would dwarf the work).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime")
    })
    .block_on(future)
}
