//! Chunk hashes that add up to the file's ordinary BLAKE3 hash.
//!
//! BLAKE3 is a Merkle tree over 1 KiB pieces. A transfer chunk is a power
//! of two of those pieces, so each chunk is a whole subtree and has a
//! chaining value (its "chunk hash") that `blake3::hazmat` computes from the
//! chunk alone and its offset. The manifest carries the file's hash (the
//! same value `b3sum` prints) and the list of chunk hashes; the receiver
//! checks once that the list merges to the file hash, and then every chunk
//! against its entry as it arrives. A damaged chunk is therefore caught on
//! its own and asked for again, and a file whose chunks all check out is
//! known to have the right hash without reading it back.
//!
//! Files of one chunk have no interior node: their single "chunk hash" is
//! the file hash itself.

use blake3::hazmat::{HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root};

/// A 32-byte BLAKE3 output: a file hash or a chunk's chaining value.
pub type Hash32 = [u8; 32];

/// How many chunks a file of `size` bytes has with chunks of `chunk_len`.
pub fn chunk_count(size: u64, chunk_len: u64) -> u64 {
    size.div_ceil(chunk_len)
}

/// The chunk hash of chunk `index` (at `index * chunk_len`) of a file that
/// has `chunks` chunks in all. `data` must be the whole chunk: `chunk_len`
/// bytes, or fewer for the last one. The caller checks the length first
/// (BLAKE3's subtree hasher refuses data that does not fit its place).
pub fn chunk_hash(data: &[u8], index: u64, chunk_len: u64, chunks: u64) -> Hash32 {
    if chunks == 1 {
        return *blake3::hash(data).as_bytes();
    }
    let mut h = blake3::Hasher::new();
    h.set_input_offset(index * chunk_len);
    h.update(data);
    h.finalize_non_root()
}

/// Largest power of two strictly below `n` (n ≥ 2): how many chunks the
/// left subtree holds. Chunks are whole powers of two of BLAKE3's 1 KiB
/// pieces, so this is BLAKE3's own split rule counted in chunks.
fn left_len(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

fn merge(cvs: &[Hash32], root: bool) -> Hash32 {
    if cvs.len() == 1 {
        return cvs[0];
    }
    let split = left_len(cvs.len());
    let left = merge(&cvs[..split], false);
    let right = merge(&cvs[split..], false);
    if root {
        *merge_subtrees_root(&left, &right, Mode::Hash).as_bytes()
    } else {
        merge_subtrees_non_root(&left, &right, Mode::Hash)
    }
}

/// The file hash the chunk hashes add up to. An empty file has no chunks
/// and the hash of nothing.
pub fn file_hash(chunk_hashes: &[Hash32]) -> Hash32 {
    match chunk_hashes {
        [] => *blake3::hash(b"").as_bytes(),
        [only] => *only,
        many => merge(many, true),
    }
}

/// Hashes a file chunk by chunk as it is read, in order.
pub struct FileHasher {
    chunk_len: u64,
    chunks: u64,
    next: u64,
    hashes: Vec<Hash32>,
}

impl FileHasher {
    pub fn new(size: u64, chunk_len: u64) -> Self {
        let chunks = chunk_count(size, chunk_len);
        FileHasher {
            chunk_len,
            chunks,
            next: 0,
            hashes: Vec::with_capacity(chunks.min(1 << 20) as usize),
        }
    }

    /// The next chunk, in order and of the right length.
    pub fn chunk(&mut self, data: &[u8]) {
        self.hashes
            .push(chunk_hash(data, self.next, self.chunk_len, self.chunks));
        self.next += 1;
    }

    /// The file hash and the chunk hashes.
    pub fn finish(self) -> (Hash32, Vec<Hash32>) {
        (file_hash(&self.hashes), self.hashes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes_of(data: &[u8], chunk_len: usize) -> (Hash32, Vec<Hash32>) {
        let mut h = FileHasher::new(data.len() as u64, chunk_len as u64);
        for c in data.chunks(chunk_len) {
            h.chunk(c);
        }
        h.finish()
    }

    #[test]
    fn chunk_hashes_add_up_to_the_plain_blake3_hash() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for chunk_len in [1024usize, 2048, 4096, 65536] {
            for len in [
                0,
                1,
                1023,
                1024,
                1025,
                chunk_len - 1,
                chunk_len,
                chunk_len + 1,
                2 * chunk_len,
                3 * chunk_len,
                3 * chunk_len + 5,
                4 * chunk_len,
                5 * chunk_len - 1,
                8 * chunk_len,
                9 * chunk_len + 1,
                data.len(),
            ] {
                let len = len.min(data.len());
                let (root, list) = hashes_of(&data[..len], chunk_len);
                assert_eq!(
                    root,
                    *blake3::hash(&data[..len]).as_bytes(),
                    "len {len} chunk {chunk_len}"
                );
                assert_eq!(list.len() as u64, chunk_count(len as u64, chunk_len as u64));
                assert_eq!(file_hash(&list), root);
            }
        }
    }

    #[test]
    fn a_changed_chunk_or_list_does_not_add_up() {
        let data = vec![5u8; 10 * 4096 + 17];
        let (root, mut list) = hashes_of(&data, 4096);
        let mut bad = data[4096..8192].to_vec();
        bad[100] ^= 1;
        assert_ne!(chunk_hash(&bad, 1, 4096, 11), list[1]);
        assert_eq!(chunk_hash(&data[4096..8192], 1, 4096, 11), list[1]);
        // The same bytes at another place hash differently.
        assert_ne!(chunk_hash(&data[4096..8192], 2, 4096, 11), list[1]);
        list.swap(0, 1);
        assert_ne!(file_hash(&list), root);
    }
}
