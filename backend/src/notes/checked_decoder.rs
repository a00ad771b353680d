//! A Yjs v1 update decoder that refuses, while yrs reads, the values yrs
//! would take but mishandle: client ids past 53 bits and clocks that could
//! wrap around its u32 arithmetic. Everything here was found by the
//! `yjs_integrate` fuzz target.
//!
//! yrs reads an update through the [`Decoder`] it is given, in a fixed
//! order: per client, the block count, [`Decoder::read_client`], the first
//! clock (a varint); per block, [`Decoder::read_info`], then a skip's
//! length (a varint), a GC's or deleted content's length
//! ([`Decoder::read_len`]) or an item's origins, parent and content; then
//! the delete set. This decoder follows that order (yrs 0.28.1, pinned in
//! Cargo.toml) to see the clocks and lengths it needs to check.
//!
//! It also notes what the update depends on outside its own blocks (the
//! clocks its origins and parents name) and whether it has gaps (skips),
//! for the document to refuse what yrs would have to keep pending.

use std::collections::HashMap;

use yrs::ClientID;
use yrs::encoding::read::{Cursor, Error, Read};
use yrs::encoding::varint::VarInt;
use yrs::updates::decoder::Decoder;

/// Yjs client ids are 53 bits (JavaScript's safe integers). yrs keeps them
/// in a u64 with the top 11 bits set, so two ids that differ only up there
/// become one client, whose blocks then overlap: yrs integrates those
/// unchecked and corrupts its memory.
pub const MAX_CLIENT_ID: u64 = (1 << 53) - 1;

/// The clocks a note accepts stay below this. yrs adds block lengths to
/// u32 clocks unchecked in release builds: with every clock below 2^31 and
/// the lengths of one update below 2^31 in total, no sum wraps. No real
/// client makes 2^31 edits.
pub const CLOCK_LIMIT: u32 = 1 << 31;

/// A block's info byte for a skip (a gap in a merged update).
const SKIP: u8 = 10;

/// What the next varint yrs reads is, when this decoder must check it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    Other,
    /// A client's first clock, read right after its id.
    FirstClock,
    /// A skip's length, read right after its info byte.
    SkipLength,
}

pub struct CheckedDecoderV1<'a> {
    cursor: Cursor<'a>,
    next: Next,
    /// The lengths read so far that no bytes of the update stand for (GC
    /// blocks, skips, deleted content, counts of values). Any other block
    /// is at most as long as its own bytes (a string's UTF-16 length is at
    /// most its UTF-8 length), so no client's blocks reach further than
    /// its first clock plus this plus the update's length.
    declared: u64,
    /// Per client, the clock just past the newest one an origin or parent
    /// names.
    pub needs: HashMap<ClientID, u32>,
    /// Skips read: gaps in a client's blocks.
    pub skips: usize,
}

impl<'a> CheckedDecoderV1<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            cursor: Cursor::new(data),
            next: Next::Other,
            declared: 0,
            needs: HashMap::new(),
            skips: 0,
        }
    }

    fn read_checked_client(&mut self) -> Result<ClientID, Error> {
        let client: u64 = self.cursor.read_var()?;
        if client > MAX_CLIENT_ID {
            return Err(Error::UnexpectedValue);
        }
        Ok(ClientID::new(client))
    }

    fn read_clock(&mut self) -> Result<u32, Error> {
        let clock: u32 = self.cursor.read_var()?;
        if clock >= CLOCK_LIMIT {
            return Err(Error::UnexpectedValue);
        }
        Ok(clock)
    }

    /// An origin's or parent's id: a clock past the limit names nothing
    /// that exists.
    fn read_checked_id(&mut self) -> Result<yrs::ID, Error> {
        let client = self.read_checked_client()?;
        let clock = self.read_clock()?;
        let needed = self.needs.entry(client).or_default();
        *needed = (*needed).max(clock + 1);
        Ok(yrs::ID::new(client, clock))
    }

    /// Counts a length no bytes stand for, refusing the update once the
    /// lengths and its own size could carry a clock past u32::MAX.
    fn declare(&mut self, length: u64) -> Result<(), Error> {
        self.declared += length;
        let reach = self.declared + self.cursor.buf.len() as u64;
        if reach >= u64::from(CLOCK_LIMIT) {
            return Err(Error::UnexpectedValue);
        }
        Ok(())
    }
}

impl Read for CheckedDecoderV1<'_> {
    fn read_exact(&mut self, len: usize) -> Result<&[u8], Error> {
        self.cursor.read_exact(len)
    }

    fn read_u8(&mut self) -> Result<u8, Error> {
        self.cursor.read_u8()
    }

    fn read_var<T: VarInt>(&mut self) -> Result<T, Error> {
        let next = std::mem::replace(&mut self.next, Next::Other);
        if next == Next::Other {
            return T::read(&mut self.cursor);
        }
        // The same bytes read as a u64 to check them, whatever T is.
        let start = self.cursor.next;
        let value: u64 = self.cursor.read_var()?;
        match next {
            Next::FirstClock if value >= u64::from(CLOCK_LIMIT) => {
                return Err(Error::UnexpectedValue);
            }
            Next::SkipLength => self.declare(value)?,
            _ => {}
        }
        self.cursor.next = start;
        T::read(&mut self.cursor)
    }
}

impl Decoder for CheckedDecoderV1<'_> {
    fn reset_ds_cur_val(&mut self) {}

    /// A deleted range: its start below the limit and its length at most
    /// the limit, so its end cannot wrap.
    fn read_ds_clock(&mut self) -> Result<u32, Error> {
        self.read_clock()
    }

    fn read_ds_len(&mut self) -> Result<u32, Error> {
        let len: u32 = self.cursor.read_var()?;
        if len > CLOCK_LIMIT {
            return Err(Error::UnexpectedValue);
        }
        Ok(len)
    }

    fn read_left_id(&mut self) -> Result<yrs::ID, Error> {
        self.read_checked_id()
    }

    fn read_right_id(&mut self) -> Result<yrs::ID, Error> {
        self.read_checked_id()
    }

    /// Only a client's header in the update's blocks: the delete set reads
    /// its clients as plain varints (which yrs folds the same way, but a
    /// deletion of a folded id only deletes; it cannot overlap blocks).
    fn read_client(&mut self) -> Result<ClientID, Error> {
        let client = self.read_checked_client()?;
        self.next = Next::FirstClock;
        Ok(client)
    }

    fn read_info(&mut self) -> Result<u8, Error> {
        let info = self.cursor.read_u8()?;
        if info == SKIP {
            self.next = Next::SkipLength;
            self.skips += 1;
        }
        Ok(info)
    }

    fn read_parent_info(&mut self) -> Result<bool, Error> {
        let info: u32 = self.cursor.read_var()?;
        Ok(info == 1)
    }

    fn read_type_ref(&mut self) -> Result<u8, Error> {
        self.cursor.read_u8()
    }

    /// A GC block's or deleted content's length, or a count of values.
    fn read_len(&mut self) -> Result<u32, Error> {
        let len: u32 = self.cursor.read_var()?;
        self.declare(u64::from(len))?;
        Ok(len)
    }

    fn read_any(&mut self) -> Result<yrs::Any, Error> {
        yrs::Any::decode(self)
    }

    fn read_json(&mut self) -> Result<yrs::Any, Error> {
        let source = self.read_string()?;
        yrs::Any::from_json(source)
    }

    fn read_key(&mut self) -> Result<std::sync::Arc<str>, Error> {
        Ok(self.read_string()?.into())
    }

    fn read_to_end(&mut self) -> Result<&[u8], Error> {
        Ok(&self.cursor.buf[self.cursor.next..])
    }
}
