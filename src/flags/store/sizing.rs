//! What a definitions document needs: flag, node and text counts, and the exact size of the
//! store that holds it, on the host and on Cortex-M.

use core::fmt;

use super::{Flag, Node, Settings};

/// Sizes a definitions document needs (or a store has).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Requirements {
    /// Flags.
    pub flags: usize,
    /// Nodes (conditions, filters, variants, payloads, cohort groups, ...).
    pub nodes: usize,
    /// Bytes of text.
    pub bytes: usize,
}

impl Requirements {
    /// RAM a [`FlagStore`](super::FlagStore) with these capacities takes on this target, in bytes
    /// (`size_of::<super::FlagStore<F, N, B>>()`).
    #[must_use]
    pub const fn store_bytes(&self) -> usize {
        store_size(
            self,
            Layout {
                word: size_of::<usize>(),
                flag: size_of::<Flag>(),
                flag_align: align_of::<Flag>(),
                node: size_of::<Node>(),
                node_align: align_of::<Node>(),
                settings: size_of::<Settings>(),
            },
        )
    }

    /// RAM a [`FlagStore`](super::FlagStore) with these capacities takes on a 32-bit Arm Cortex-M target
    /// (`thumbv6m`, `thumbv7em`, ...), in bytes, whatever target this runs on: what a host tool
    /// tells a firmware engineer. Checked against the real layout at compile time when building
    /// for Arm.
    #[must_use]
    pub const fn cortex_m_store_bytes(&self) -> usize {
        store_size(self, CORTEX_M_LAYOUT)
    }

    pub(super) fn fits(&self, cap: &Self) -> bool {
        self.flags <= cap.flags && self.nodes <= cap.nodes && self.bytes <= cap.bytes
    }
}

impl fmt::Display for Requirements {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} flags, {} nodes, {} bytes of text",
            self.flags, self.nodes, self.bytes
        )
    }
}

/// Sizes that make up a [`FlagStore`]'s layout on some target.
#[derive(Clone, Copy)]
struct Layout {
    word: usize,
    flag: usize,
    flag_align: usize,
    node: usize,
    node_align: usize,
    settings: usize,
}

/// The layout on 32-bit Arm (AAPCS: 8-byte alignment for `i64`/`u64`).
const CORTEX_M_LAYOUT: Layout = Layout {
    word: 4,
    flag: 96,
    flag_align: 8,
    node: 40,
    node_align: 4,
    settings: 12,
};

/// `n` rounded up to a multiple of `align` (saturating at `usize::MAX`).
const fn round_up(n: usize, align: usize) -> usize {
    n.div_ceil(align).saturating_mul(align)
}

/// `size_of::<super::FlagStore<F, N, B>>()` from its parts: two `heapless::Vec`s (a length
/// word, then the items), the text bytes, and the lengths, settings and `loaded` flag, padded to
/// the largest alignment. Saturates at `usize::MAX` for capacities no target could hold.
const fn store_size(r: &Requirements, l: Layout) -> usize {
    let flags = round_up(
        round_up(l.word, l.flag_align).saturating_add(r.flags.saturating_mul(l.flag)),
        l.flag_align,
    );
    let nodes = round_up(
        round_up(l.word, l.node_align).saturating_add(r.nodes.saturating_mul(l.node)),
        l.node_align,
    );
    let meta = round_up(3 * l.word + l.settings + 1, l.word);
    let align = if l.flag_align > l.word {
        l.flag_align
    } else {
        l.word
    };
    round_up(
        flags
            .saturating_add(nodes)
            .saturating_add(r.bytes)
            .saturating_add(meta),
        align,
    )
}

// The host-side figure must match the real layout on the targets it describes.
#[cfg(all(target_arch = "arm", target_pointer_width = "32"))]
const _: () = {
    let l = CORTEX_M_LAYOUT;
    assert!(
        size_of::<Flag>() == l.flag
            && align_of::<Flag>() == l.flag_align
            && size_of::<Node>() == l.node
            && align_of::<Node>() == l.node_align
            && size_of::<Settings>() == l.settings,
        "update CORTEX_M_LAYOUT"
    );
    let r = Requirements {
        flags: 20,
        nodes: 75,
        bytes: 856,
    };
    assert!(size_of::<super::FlagStore<20, 75, 856>>() == r.cortex_m_store_bytes());
    let r = Requirements {
        flags: 3,
        nodes: 7,
        bytes: 5,
    };
    assert!(size_of::<super::FlagStore<3, 7, 5>>() == r.cortex_m_store_bytes());
};
