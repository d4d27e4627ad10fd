//! The deployment package of a Lambda function as `cargo lambda build --output-format zip`
//! produces it: one deflated entry named `bootstrap`, executable. Lambda limits and bills
//! cold starts partly by this size, so the harness reports it next to the timings.

use std::io::{Cursor, Write};
use std::path::Path;

use anyhow::{Context, Result};
use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

/// The entry a custom runtime (`provided.al2023`) executes.
pub const BOOTSTRAP_ENTRY: &str = "bootstrap";

/// Deflate's best level: the package is built once and downloaded at every cold start.
const BEST_DEFLATE_LEVEL: i64 = 9;

/// The zip archive holding `binary` as `bootstrap`.
pub fn lambda_zip(binary: &Path) -> Result<Vec<u8>> {
    let contents = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(BEST_DEFLATE_LEVEL))
        .unix_permissions(0o755)
        .large_file(contents.len() as u64 >= u64::from(u32::MAX));
    let mut archive = ZipWriter::new(Cursor::new(Vec::new()));
    archive.start_file(BOOTSTRAP_ENTRY, options).context("starting the bootstrap entry")?;
    archive.write_all(&contents).context("compressing the binary")?;
    let written = archive.finish().context("finishing the archive")?;
    Ok(written.into_inner())
}

/// Size in bytes of the zip Lambda would receive for `binary`.
pub fn lambda_zip_bytes(binary: &Path) -> Result<u64> {
    Ok(lambda_zip(binary)?.len() as u64)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// A file of this test's own in the temporary directory, removed when dropped.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn with(contents: &[u8]) -> Self {
            let path = std::env::temp_dir().join(format!("brain2-package-{}", uuid::Uuid::new_v4().simple()));
            std::fs::write(&path, contents).unwrap();
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn compressible_contents() -> Vec<u8> {
        b"brain2 bootstrap binary, repeated so that deflate has something to find. ".repeat(2_000)
    }

    #[test]
    fn the_package_is_a_deflated_bootstrap_smaller_than_the_binary() {
        let contents = compressible_contents();
        let binary = TempFile::with(&contents);

        let size = lambda_zip_bytes(&binary.0).unwrap();

        assert!(size < contents.len() as u64, "zip of {size} bytes for {} input bytes", contents.len());
        let mut archive = zip::ZipArchive::new(Cursor::new(lambda_zip(&binary.0).unwrap())).unwrap();
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_name(BOOTSTRAP_ENTRY).unwrap();
        assert_eq!(entry.compression(), CompressionMethod::Deflated);
        assert_eq!(entry.unix_mode().map(|mode| mode & 0o777), Some(0o755));
        let mut unpacked = Vec::new();
        entry.read_to_end(&mut unpacked).unwrap();
        assert_eq!(unpacked, contents);
    }

    #[test]
    fn a_missing_binary_is_an_error() {
        let missing = std::env::temp_dir().join(format!("brain2-missing-{}", uuid::Uuid::new_v4().simple()));
        assert!(lambda_zip_bytes(&missing).is_err());
    }
}
