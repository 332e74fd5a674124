//! A value read often and replaced whole (the settings in force, the
//! secret rules): a reader takes an `Arc` of the value as it is and never
//! holds the lock; a replacement swaps the `Arc`.

use std::sync::{Arc, RwLock};

/// See the module's documentation.
pub(crate) struct Current<T>(RwLock<Arc<T>>);

impl<T> Current<T> {
    /// Starts with `value`.
    pub(crate) fn new(value: T) -> Self {
        Self(RwLock::new(Arc::new(value)))
    }

    /// The value as it is now.
    pub(crate) fn get(&self) -> Arc<T> {
        match self.0.read() {
            Ok(value) => Arc::clone(&value),
            // A writer panicked mid-swap: the `Arc` it left is whole.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts `value` in place for every later reader.
    pub(crate) fn replace(&self, value: T) {
        match self.0.write() {
            Ok(mut current) => *current = Arc::new(value),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_keep_what_they_took_and_later_ones_see_the_new_value() {
        let current = Current::new(1);
        let taken = current.get();
        current.replace(2);
        assert_eq!((*taken, *current.get()), (1, 2));
    }
}
