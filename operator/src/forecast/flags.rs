//! A first-in first-out ring of flags, one bit each: which samples of a forecaster's window
//! were imputed. A `VecDeque<bool>` of a week of minutes is 10 KB per workload; this is 1.3.

/// Flags in arrival order, at most `capacity` (older ones drop off the front).
#[derive(Debug, Clone, Default)]
pub(crate) struct FlagRing {
    words: Vec<u64>,
    /// Bit position of the oldest flag.
    head: usize,
    len: usize,
    capacity: usize,
}

impl FlagRing {
    /// An empty ring that holds up to `capacity` flags.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            words: vec![0; capacity.div_ceil(64)],
            head: 0,
            len: 0,
            capacity,
        }
    }

    /// Flags kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds a flag at the back, dropping the oldest when full.
    pub(crate) fn push_back(&mut self, flag: bool) {
        if self.capacity == 0 {
            return;
        }
        if self.len == self.capacity {
            self.head = (self.head + 1) % self.capacity;
            self.len -= 1;
        }
        let at = (self.head + self.len) % self.capacity;
        let (word, bit) = (at / 64, at % 64);
        if let Some(w) = self.words.get_mut(word) {
            *w = (*w & !(1 << bit)) | (u64::from(flag) << bit);
        }
        self.len += 1;
    }

    /// The `i`-th flag from the front.
    pub(crate) fn get(&self, i: usize) -> Option<bool> {
        if i >= self.len {
            return None;
        }
        let at = (self.head + i) % self.capacity;
        self.words.get(at / 64).map(|w| w >> (at % 64) & 1 == 1)
    }

    /// The flags, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = bool> + '_ {
        (0..self.len).filter_map(|i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Whatever is pushed, the ring holds what a bounded `VecDeque<bool>` would.
    #[test]
    fn holds_the_last_flags_in_order_as_a_bounded_deque_would() {
        for capacity in [1, 3, 64, 65, 130] {
            let mut ring = FlagRing::with_capacity(capacity);
            let mut deque = VecDeque::new();
            let mut seed = 7u64;
            for _ in 0..500 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                let flag = seed >> 63 == 1;
                ring.push_back(flag);
                if deque.len() == capacity {
                    deque.pop_front();
                }
                deque.push_back(flag);
                assert_eq!(ring.len(), deque.len());
                assert!(ring.iter().eq(deque.iter().copied()), "capacity {capacity}");
            }
        }
    }
}
