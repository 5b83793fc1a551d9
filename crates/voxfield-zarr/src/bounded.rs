//! A local store that refuses byte ranges past the end of the stored object
//! before anything is allocated. A shard index (even one with a valid crc32c)
//! gives each inner chunk's offset and length; zarrs' filesystem store sizes its
//! read buffer from that length, so a forged 2^40 aborted the process on a
//! 1 TiB allocation. Checked here, every such read is an ordinary error.

use zarrs::storage::byte_range::{ByteRange, ByteRangeIterator};
use zarrs::storage::{
    MaybeBytes, MaybeBytesIterator, ReadableStorageTraits, StorageError, StoreKey,
};

/// `S` with every partial read checked against the object's size.
pub(crate) struct Bounded<S>(pub S);

impl<S: ReadableStorageTraits> ReadableStorageTraits for Bounded<S> {
    fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        self.0.get(key)
    }

    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        let Some(size) = self.0.size_key(key)? else {
            return Ok(None);
        };
        let ranges: Vec<ByteRange> = byte_ranges.collect();
        for r in &ranges {
            let end = match *r {
                ByteRange::FromStart(start, Some(len)) => start.checked_add(len),
                ByteRange::FromStart(start, None) => Some(start),
                ByteRange::Suffix(len) => Some(len),
            };
            if end.is_none_or(|e| e > size) {
                return Err(StorageError::Other(format!(
                    "{key}: a read of bytes {r:?} runs past the end of its {size} bytes \
                     (a corrupt shard index or truncated file)"
                )));
            }
        }
        self.0.get_partial_many(key, Box::new(ranges.into_iter()))
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.0.size_key(key)
    }

    fn supports_get_partial(&self) -> bool {
        self.0.supports_get_partial()
    }
}
