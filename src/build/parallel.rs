//! Work spread over the machine's cores: reading a big build's modules and compressing its batch
//! each take some 40 ms of one core per thousand modules, which a warm rerun (no login to hide
//! them behind) waits for.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Cores kept for other work of the process while [`Reserved`] values live.
static RESERVED: AtomicUsize = AtomicUsize::new(0);

/// A core kept for other work of the tool's while this lives (see [`reserve`]).
#[must_use = "the core is kept only while this lives"]
pub struct Reserved(());

/// Keeps a core for other work until the value returned is dropped: [`map`] then uses one thread
/// fewer. A cold run's login (its `ssh` takes a core for its key exchange, some 100 ms) goes on
/// while the project is read and its batch made: spread over both of two cores, that work made
/// the login 30 ms longer, which a run waits for, and itself shorter, which it does not.
pub fn reserve() -> Reserved {
    RESERVED.fetch_add(1, Ordering::Relaxed);
    Reserved(())
}

impl Drop for Reserved {
    fn drop(&mut self) {
        RESERVED.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `f` of every item of `items`, in their order, on as many threads as the machine has cores for
/// (less those [`reserve`]d; at most one per `grain` items, so that a small job stays on the
/// calling thread). Each thread takes the next item not yet taken, so one slow item holds up no
/// other.
pub fn map<T: Sync, R: Send>(items: &[T], grain: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .saturating_sub(RESERVED.load(Ordering::Relaxed))
        .min(items.len().div_ceil(grain.max(1)));
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        match items.get(i) {
                            Some(item) => mine.push((i, f(item))),
                            None => return mine,
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| match worker.join() {
                Ok(mine) => mine,
                // A panic of `f` is a bug: it goes on as the caller's own.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_order_of_the_items_whatever_the_grain() {
        let items: Vec<u32> = (0..1000).collect();
        for grain in [0, 1, 7, 1000, 5000] {
            assert_eq!(
                map(&items, grain, |n| n * 2),
                (0..1000).map(|n| n * 2).collect::<Vec<_>>()
            );
        }
        assert!(map(&[] as &[u32], 1, |n| *n).is_empty());
    }

    #[test]
    fn with_every_core_reserved_the_calling_thread_does_it_all() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let reserved: Vec<Reserved> = (0..cores).map(|_| reserve()).collect();
        let caller = std::thread::current().id();
        let items: Vec<u32> = (0..1000).collect();
        let on = map(&items, 1, |_| std::thread::current().id());
        assert!(on.iter().all(|id| *id == caller));
        drop(reserved);
    }

    #[test]
    fn a_panic_of_the_function_reaches_the_caller() {
        let items: Vec<u32> = (0..64).collect();
        let caught = std::panic::catch_unwind(|| {
            map(&items, 1, |&n| {
                assert!(n != 40, "item 40");
                n
            })
        });
        assert!(caught.is_err());
    }
}
