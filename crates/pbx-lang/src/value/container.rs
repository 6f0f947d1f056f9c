//! Arrays and dictionaries: mutable containers shared by reference
//! (CGPL.md §0.7).
//!
//! Three rules keep them safe to hand to untrusted scripts:
//! * a container can never hold itself, directly or through others (the
//!   insertion is refused), so reference counting frees everything and the
//!   walks over nested values (printing, copying, comparing) terminate;
//! * dropping a deeply nested value does not recurse, so no script can blow
//!   the thread's stack by building a long chain;
//! * their sizes are counted by the meter for the task's memory limit.
//!
//! They use `Rc` and `RefCell`, so values are neither `Send` nor `Sync`: a
//! task's values stay in that task (see `vm::Task` for how a task moves
//! between threads), and values that cross tasks are deep-copied.

use std::cell::{Ref, RefCell};
use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::mem;
use std::rc::Rc;

use indexmap::{Equivalent, IndexMap};

use super::bytes::Bytes;
use super::meter;
use super::Value;

const VALUE_SIZE: usize = mem::size_of::<Value>();
/// Approximate bytes per dictionary slot: the entry (hash, key, value) and
/// its index.
const DICT_SLOT_SIZE: usize = 8 + mem::size_of::<DictKey>() + VALUE_SIZE + 8;

/// Why a container refused a change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContainerError {
    /// The value would end up inside itself.
    #[error("an array or dictionary cannot be put inside itself")]
    Cycle,
    /// `a[i] = x` with `i` beyond the end (only `i == Length(a)` appends).
    #[error(
        "index {index} is past the end of the array (its length is {length}; assigning at {length} appends)"
    )]
    PastEnd { index: i64, length: usize },
    /// A negative index.
    #[error("index {0} is negative; arrays count from 0")]
    Negative(i64),
}

// ------------------------------------------------------------------ arrays

struct ArrayItems {
    items: Vec<Value>,
}

impl Drop for ArrayItems {
    fn drop(&mut self) {
        meter::release(self.items.capacity() * VALUE_SIZE);
        drop_without_recursion(mem::take(&mut self.items));
    }
}

/// An ordered list of values.
#[derive(Clone)]
pub struct Array(Rc<RefCell<ArrayItems>>);

impl Array {
    /// A new empty array.
    pub fn new() -> Array {
        Array(Rc::new(RefCell::new(ArrayItems { items: Vec::new() })))
    }

    /// An array of `items`. The items must not contain the new array (they
    /// cannot: it does not exist yet).
    pub fn from_vec(items: Vec<Value>) -> Array {
        meter::charge(items.capacity() * VALUE_SIZE);
        Array(Rc::new(RefCell::new(ArrayItems { items })))
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.0.borrow().items.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element at `index`, or null past the end (CGPL.md §0.15).
    #[inline]
    pub fn get(&self, index: i64) -> Value {
        let Ok(index) = usize::try_from(index) else {
            return Value::Null;
        };
        // SAFETY: the reference lives only for this clone, during which
        // nothing can borrow the array mutably (no script code runs); an
        // active mutable borrow is reported as an error by the call.
        match unsafe { self.0.try_borrow_unguarded() } {
            Ok(items) => items.items.get(index).cloned().unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    /// Borrows the elements.
    pub fn items(&self) -> Ref<'_, [Value]> {
        Ref::map(self.0.borrow(), |items| items.items.as_slice())
    }

    /// A copy of the element list (the elements themselves are shared).
    pub fn to_vec(&self) -> Vec<Value> {
        self.0.borrow().items.clone()
    }

    fn check(&self, value: &Value) -> Result<(), ContainerError> {
        if value.contains_container(self.address()) {
            return Err(ContainerError::Cycle);
        }
        Ok(())
    }

    fn grow<R>(&self, change: impl FnOnce(&mut Vec<Value>) -> R) -> R {
        let mut inner = self.0.borrow_mut();
        let before = inner.items.capacity();
        let result = change(&mut inner.items);
        let after = inner.items.capacity();
        if after > before {
            meter::charge((after - before) * VALUE_SIZE);
        } else {
            meter::release((before - after) * VALUE_SIZE);
        }
        result
    }

    /// `a[index] = value`; an index equal to the length appends.
    #[inline]
    pub fn set(&self, index: i64, value: Value) -> Result<(), ContainerError> {
        let Ok(position) = usize::try_from(index) else {
            return Err(ContainerError::Negative(index));
        };
        if value.is_container() {
            self.check(&value)?;
        }
        let mut inner = self.0.borrow_mut();
        let length = inner.items.len();
        if position < length {
            let old = mem::replace(&mut inner.items[position], value);
            // The old element is dropped after the borrow ends: dropping
            // it may drop nested containers.
            drop(inner);
            old.discard();
            Ok(())
        } else if position == length {
            drop(inner);
            self.grow(|items| items.push(value));
            Ok(())
        } else {
            Err(ContainerError::PastEnd { index, length })
        }
    }

    /// Appends `value`.
    pub fn push(&self, value: Value) -> Result<(), ContainerError> {
        self.check(&value)?;
        self.grow(|items| items.push(value));
        Ok(())
    }

    /// Inserts before `index` (at the end when `index` is the length).
    pub fn insert(&self, index: i64, value: Value) -> Result<(), ContainerError> {
        let Ok(position) = usize::try_from(index) else {
            return Err(ContainerError::Negative(index));
        };
        self.check(&value)?;
        let length = self.len();
        if position > length {
            return Err(ContainerError::PastEnd { index, length });
        }
        self.grow(|items| items.insert(position, value));
        Ok(())
    }

    /// Removes the element at `index`; nothing happens past the end.
    pub fn remove(&self, index: i64) -> Option<Value> {
        let position = usize::try_from(index).ok()?;
        if position >= self.len() {
            return None;
        }
        Some(self.0.borrow_mut().items.remove(position))
    }

    /// Sorts the elements with `compare`.
    pub fn sort_by(&self, compare: impl FnMut(&Value, &Value) -> std::cmp::Ordering) {
        self.0.borrow_mut().items.sort_by(compare);
    }

    /// Whether both are the same array.
    pub fn same(&self, other: &Array) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// Identity of the array, for cycle checks.
    pub(crate) fn address(&self) -> usize {
        Rc::as_ptr(&self.0) as *const u8 as usize
    }
}

impl Default for Array {
    fn default() -> Array {
        Array::new()
    }
}

// ------------------------------------------------------------ dictionaries

/// A dictionary key: exact comparison, hashed case-folded so that the same
/// table serves case-insensitive lookups too.
#[derive(Clone, PartialEq, Eq)]
pub struct DictKey(pub Bytes);

fn hash_folded<H: Hasher>(bytes: &[u8], state: &mut H) {
    let mut chunk = [0u8; 64];
    for piece in bytes.chunks(chunk.len()) {
        for (slot, byte) in chunk.iter_mut().zip(piece) {
            *slot = byte.to_ascii_lowercase();
        }
        state.write(&chunk[..piece.len()]);
    }
    state.write_usize(bytes.len());
}

impl Hash for DictKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_folded(self.0.as_slice(), state)
    }
}

/// Looks a key up by its bytes, exactly or ignoring ASCII case.
struct Lookup<'a> {
    bytes: &'a [u8],
    ignore_case: bool,
}

impl Hash for Lookup<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_folded(self.bytes, state)
    }
}

impl Equivalent<DictKey> for Lookup<'_> {
    fn equivalent(&self, key: &DictKey) -> bool {
        if self.ignore_case {
            self.bytes.eq_ignore_ascii_case(key.0.as_slice())
        } else {
            self.bytes == key.0.as_slice()
        }
    }
}

struct DictEntries {
    map: IndexMap<DictKey, Value, RandomState>,
    ignore_case: bool,
}

impl Drop for DictEntries {
    fn drop(&mut self) {
        meter::release(self.map.capacity() * DICT_SLOT_SIZE);
        let values: Vec<Value> = self.map.drain(..).map(|(_, value)| value).collect();
        drop_without_recursion(values);
    }
}

/// A dictionary: string keys in insertion order (CGPL.md §0.6), compared
/// exactly unless `SetCaseSensitive(d, null)` was called.
#[derive(Clone)]
pub struct Dict(Rc<RefCell<DictEntries>>);

impl Dict {
    /// A new, empty, case-sensitive dictionary.
    pub fn new() -> Dict {
        Dict(Rc::new(RefCell::new(DictEntries {
            map: IndexMap::with_hasher(RandomState::new()),
            ignore_case: false,
        })))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.borrow().map.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether keys are compared ignoring ASCII case.
    pub fn ignores_case(&self) -> bool {
        self.0.borrow().ignore_case
    }

    /// The value under `key`, or null.
    pub fn get(&self, key: &[u8]) -> Value {
        let inner = self.0.borrow();
        let lookup = Lookup {
            bytes: key,
            ignore_case: inner.ignore_case,
        };
        inner.map.get(&lookup).cloned().unwrap_or(Value::Null)
    }

    /// The key with ordinal `index` (insertion order), or null.
    pub fn key_at(&self, index: i64) -> Value {
        usize::try_from(index)
            .ok()
            .and_then(|index| {
                self.0
                    .borrow()
                    .map
                    .get_index(index)
                    .map(|(key, _)| Value::Str(key.0.clone()))
            })
            .unwrap_or(Value::Null)
    }

    /// Sets `key` to `value`; a null value removes the key (CGPL.md §0.6).
    pub fn set(&self, key: Bytes, value: Value) -> Result<(), ContainerError> {
        if value.is_null() {
            let removed = {
                let mut inner = self.0.borrow_mut();
                let lookup = Lookup {
                    bytes: key.as_slice(),
                    ignore_case: inner.ignore_case,
                };
                inner.map.shift_remove(&lookup)
            };
            drop(removed);
            return Ok(());
        }
        if value.contains_container(self.address()) {
            return Err(ContainerError::Cycle);
        }
        let old = {
            let mut inner = self.0.borrow_mut();
            let before = inner.map.capacity();
            let lookup = Lookup {
                bytes: key.as_slice(),
                ignore_case: inner.ignore_case,
            };
            let old = match inner.map.get_index_of(&lookup) {
                Some(index) => Some(mem::replace(&mut inner.map[index], value)),
                None => {
                    inner.map.insert(DictKey(key), value);
                    None
                }
            };
            let after = inner.map.capacity();
            if after > before {
                meter::charge((after - before) * DICT_SLOT_SIZE);
            }
            old
        };
        drop(old);
        Ok(())
    }

    /// Switches between exact and case-insensitive keys. Turning case
    /// sensitivity off keeps the first of keys that differ only in case.
    pub fn set_ignore_case(&self, ignore_case: bool) {
        let mut inner = self.0.borrow_mut();
        if inner.ignore_case == ignore_case {
            return;
        }
        inner.ignore_case = ignore_case;
        if ignore_case {
            let entries = mem::take(&mut inner.map);
            let mut seen: HashSet<Vec<u8>> = HashSet::new();
            let mut map = IndexMap::with_hasher(RandomState::new());
            for (key, value) in entries {
                if seen.insert(key.0.as_slice().to_ascii_lowercase()) {
                    map.insert(key, value);
                }
            }
            inner.map = map;
        }
    }

    /// Calls `visit` with each key and value, in order.
    pub fn for_each(&self, mut visit: impl FnMut(&Bytes, &Value)) {
        for (key, value) in self.0.borrow().map.iter() {
            visit(&key.0, value);
        }
    }

    /// The keys and values, in order.
    pub fn entries(&self) -> Vec<(Bytes, Value)> {
        self.0
            .borrow()
            .map
            .iter()
            .map(|(key, value)| (key.0.clone(), value.clone()))
            .collect()
    }

    /// Whether both are the same dictionary.
    pub fn same(&self, other: &Dict) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// Identity of the dictionary, for cycle checks.
    pub(crate) fn address(&self) -> usize {
        Rc::as_ptr(&self.0) as *const u8 as usize
    }
}

impl Default for Dict {
    fn default() -> Dict {
        Dict::new()
    }
}

impl Value {
    /// Whether the container at `address` is this value or inside it.
    pub(crate) fn contains_container(&self, address: usize) -> bool {
        if !self.is_container() {
            return false;
        }
        let mut pending = vec![self.clone()];
        let mut seen: HashSet<usize> = HashSet::new();
        while let Some(value) = pending.pop() {
            match &value {
                Value::Array(array) => {
                    if array.address() == address {
                        return true;
                    }
                    if seen.insert(array.address()) {
                        pending.extend(array.items().iter().filter(|v| v.is_container()).cloned());
                    }
                }
                Value::Dict(dict) => {
                    if dict.address() == address {
                        return true;
                    }
                    if seen.insert(dict.address()) {
                        dict.for_each(|_, v| {
                            if v.is_container() {
                                pending.push(v.clone());
                            }
                        });
                    }
                }
                _ => {}
            }
        }
        false
    }
}

/// Drops values without recursing into nested containers: containers whose
/// last reference is dropped here have their contents moved onto a work list.
fn drop_without_recursion(values: Vec<Value>) {
    let mut pending = values;
    while let Some(value) = pending.pop() {
        match value {
            Value::Array(array) => {
                if let Ok(cell) = Rc::try_unwrap(array.0) {
                    let mut inner = cell.into_inner();
                    pending.append(&mut inner.items);
                }
            }
            Value::Dict(dict) => {
                if let Ok(cell) = Rc::try_unwrap(dict.0) {
                    let mut inner = cell.into_inner();
                    pending.extend(inner.map.drain(..).map(|(_, value)| value));
                }
            }
            other => drop(other),
        }
    }
}
