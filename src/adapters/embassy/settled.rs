//! "A request was settled", for any number of waiting tasks, without polling.
//!
//! The runner bumps a generation counter after each request and wakes every registered task. A
//! task reads the generation, checks what it waits for, then waits for the generation to
//! change: a notification between its check and its wait is never lost.

use core::cell::RefCell;
use core::future::poll_fn;
use core::task::Poll;

use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::waitqueue::MultiWakerRegistration;

/// Tasks that can wait at once without spurious wake-ups (more still work: when the list is
/// full, every waiting task is woken to check again).
const WAITERS: usize = 4;

pub(super) struct Settled<M: RawMutex> {
    state: Mutex<M, RefCell<State>>,
}

struct State {
    generation: u32,
    wakers: MultiWakerRegistration<WAITERS>,
}

impl<M: RawMutex> Settled<M> {
    pub(super) const fn new() -> Self {
        Self {
            state: Mutex::new(RefCell::new(State {
                generation: 0,
                wakers: MultiWakerRegistration::new(),
            })),
        }
    }

    /// A request was settled: wakes every waiting task.
    pub(super) fn notify(&self) {
        self.state.lock(|s| {
            let mut s = s.borrow_mut();
            s.generation = s.generation.wrapping_add(1);
            s.wakers.wake();
        });
    }

    /// The current generation, to pass to [`changed_since`](Self::changed_since).
    pub(super) fn generation(&self) -> u32 {
        self.state.lock(|s| s.borrow().generation)
    }

    /// Completes once a request was settled after `generation` was read.
    pub(super) async fn changed_since(&self, generation: u32) {
        poll_fn(|cx| {
            self.state.lock(|s| {
                let mut s = s.borrow_mut();
                if s.generation == generation {
                    s.wakers.register(cx.waker());
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
        })
        .await;
    }
}
