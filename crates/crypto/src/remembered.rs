//! A bounded memory of facts that are expensive to establish and true forever (a packed key
//! that decompresses into the subgroup, a signature that verifies): shared across threads, at
//! most a fixed number of entries, emptied when full. What it forgets is established again,
//! never assumed.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug)]
pub struct Remembered<K, V> {
    capacity: usize,
    facts: Mutex<HashMap<K, V>>,
}

impl<K: Hash + Eq, V: Clone> Remembered<K, V> {
    /// Remembers at most `capacity` facts.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, facts: Mutex::new(HashMap::new()) }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.facts().get(key).cloned()
    }

    /// Remembers `key → value`; when `capacity` facts are already known, forgets them first.
    pub fn insert(&self, key: K, value: V) {
        let mut facts = self.facts();
        if facts.len() >= self.capacity {
            facts.clear();
        }
        facts.insert(key, value);
    }

    /// The facts; a thread that panicked while holding them left them whole (each update is
    /// one `insert` or `clear`).
    fn facts(&self) -> MutexGuard<'_, HashMap<K, V>> {
        self.facts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_up_to_its_capacity_then_starts_afresh() {
        let r = Remembered::new(2);
        r.insert(1, 'a');
        r.insert(2, 'b');
        assert_eq!((r.get(&1), r.get(&2), r.get(&3)), (Some('a'), Some('b'), None));
        r.insert(3, 'c');
        assert_eq!((r.get(&1), r.get(&2), r.get(&3)), (None, None, Some('c')));
    }
}
