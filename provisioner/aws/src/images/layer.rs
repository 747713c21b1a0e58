//! The layer a service adds to its base: the binary at
//! `/usr/local/bin/service`, written so that the same binary always gives
//! the same bytes (fixed times, owners and modes, entries in one order, one
//! compression level, no name or time in the gzip header). The same binary
//! on the same base is then the same image, and a push of it uploads
//! nothing new.

use std::io::Write as _;

use flate2::{Compression, GzBuilder};
use sha2::{Digest as _, Sha256};

/// Where the binary goes in the image; the entrypoint runs it.
pub const BINARY_PATH: &str = "usr/local/bin/service";

/// The OCI media type of a gzip-compressed layer.
pub const MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// One layer, compressed, with the two digests an image names it by.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The gzip stream, as pushed.
    pub compressed: Vec<u8>,
    /// `sha256:` of the compressed bytes: the manifest's and the registry's
    /// name for the blob.
    pub digest: String,
    /// `sha256:` of the uncompressed tar: the config's `rootfs.diff_ids`.
    pub diff_id: String,
}

/// The layer holding `binary`: the directories `usr/`, `usr/local/`,
/// `usr/local/bin/` (0755, root's, as in the base) and the binary (0755,
/// root's, so the service's user runs but cannot change it).
pub fn service_layer(binary: &[u8]) -> std::io::Result<Layer> {
    let mut archive = tar::Builder::new(Vec::new());
    archive.mode(tar::HeaderMode::Deterministic);
    for dir in ["usr/", "usr/local/", "usr/local/bin/"] {
        let mut header = header(tar::EntryType::Directory, 0o755, 0);
        archive.append_data(&mut header, dir, std::io::empty())?;
    }
    let mut header = header(tar::EntryType::Regular, 0o755, binary.len() as u64);
    archive.append_data(&mut header, BINARY_PATH, binary)?;
    let tar = archive.into_inner()?;

    // No file name and a zero time in the header, level 6 (gzip's default):
    // the same tar always compresses to the same bytes.
    let mut gzip = GzBuilder::new().mtime(0).write(Vec::new(), Compression::new(6));
    gzip.write_all(&tar)?;
    let compressed = gzip.finish()?;
    Ok(Layer { digest: sha256(&compressed), diff_id: sha256(&tar), compressed })
}

/// A tar header with the fields that vary between machines fixed: owner
/// root (0:0, no names), time 0.
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

/// `sha256:HEX` of `bytes`, the form OCI digests take.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn the_same_binary_gives_the_same_layer_and_another_binary_another() {
        let one = service_layer(b"\x7fELF one").unwrap();
        let again = service_layer(b"\x7fELF one").unwrap();
        assert_eq!((&one.digest, &one.diff_id), (&again.digest, &again.diff_id));
        assert_eq!(one.compressed, again.compressed);
        let other = service_layer(b"\x7fELF two").unwrap();
        assert_ne!(one.digest, other.digest);
        assert_eq!(one.digest, sha256(&one.compressed));
    }

    #[test]
    fn the_binary_is_roots_executable_at_the_entrypoint_with_time_zero() {
        let layer = service_layer(b"binary").unwrap();
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&layer.compressed[..]).read_to_end(&mut tar).unwrap();
        assert_eq!(layer.diff_id, sha256(&tar));
        let mut archive = tar::Archive::new(&tar[..]);
        let entries: Vec<(String, u32, u64, u64, u64)> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                let path = entry.path().unwrap().display().to_string();
                (path, header.mode().unwrap(), header.uid().unwrap(), header.mtime().unwrap(), header.size().unwrap())
            })
            .collect();
        assert_eq!(
            entries,
            vec![
                ("usr/".to_owned(), 0o755, 0, 0, 0),
                ("usr/local/".to_owned(), 0o755, 0, 0, 0),
                ("usr/local/bin/".to_owned(), 0o755, 0, 0, 0),
                (BINARY_PATH.to_owned(), 0o755, 0, 0, 6),
            ]
        );
    }
}
