//! The one lock the crate uses, switchable to loom's model-checked mutex.
//!
//! Normal builds use `parking_lot::Mutex`; `RUSTFLAGS="--cfg loom"` builds
//! swap in `loom::sync::Mutex` behind the same `lock()` signature so the
//! intake's races can be explored exhaustively.

#[cfg(not(loom))]
pub(crate) use parking_lot::Mutex;

#[cfg(loom)]
pub(crate) use loom_shim::Mutex;

#[cfg(loom)]
mod loom_shim {
    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        /// Like `parking_lot`: no poisoning (a panic under the lock is
        /// already a failed test).
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }
}
