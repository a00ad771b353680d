//! Build-time facts for `rookery --version` (the git revision and the enabled
//! features) and, with the `embed` feature, the web app made ready to embed:
//! `dist/` mirrored into `$OUT_DIR/web/identity`, with gzip and brotli
//! variants of every file that compresses well in `$OUT_DIR/web/gzip` and
//! `$OUT_DIR/web/br`, so the server never compresses anything at run time.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    git_revision(&manifest_dir);
    features();
    #[cfg(feature = "embed")]
    embed::prepare(&manifest_dir);
}

/// `ROOKERY_GIT_REVISION`: the commit being built, `ROOKERY_GIT_REVISION`
/// from the environment when set (builds from a tarball), else "unknown".
fn git_revision(manifest_dir: &Path) {
    println!("cargo:rerun-if-env-changed=ROOKERY_GIT_REVISION");
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git")
            .args(args)
            .current_dir(manifest_dir)
            .output()
            .ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
    };
    let revision = std::env::var("ROOKERY_GIT_REVISION")
        .ok()
        .filter(|revision| !revision.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    // Rerun when HEAD moves: HEAD itself (checkouts) and the branch it names
    // (commits), loose or packed. Only paths that exist: a missing one would
    // make cargo rerun this script on every build.
    let mut watched = Vec::new();
    if let Some(git_dir) = git(&["rev-parse", "--path-format=absolute", "--git-dir"]) {
        watched.push(PathBuf::from(git_dir).join("HEAD"));
    }
    if let Some(common_dir) = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]) {
        let common_dir = PathBuf::from(common_dir);
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(common_dir.join(branch));
        }
        watched.push(common_dir.join("packed-refs"));
    }
    for path in watched.iter().filter(|path| path.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rustc-env=ROOKERY_GIT_REVISION={revision}");
}

/// `ROOKERY_FEATURES`: the enabled cargo features, comma separated, or
/// "none".
fn features() {
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(key, _)| {
            let name = key.strip_prefix("CARGO_FEATURE_")?;
            Some(name.to_ascii_lowercase().replace('_', "-"))
        })
        .filter(|name| name != "default")
        .collect();
    features.sort();
    let features = if features.is_empty() {
        "none".to_owned()
    } else {
        features.join(", ")
    };
    println!("cargo:rustc-env=ROOKERY_FEATURES={features}");
}

#[cfg(feature = "embed")]
mod embed {
    use std::fs;
    use std::io::Write;
    use std::path::{Path, PathBuf};

    /// Extensions worth compressing; images and fonts already are. An empty
    /// one is a file without extension (the vendored `LICENSE`s).
    const COMPRESSIBLE: &[&str] = &[
        "", "css", "html", "js", "json", "map", "md", "mjs", "svg", "txt", "wasm", "xml",
    ];

    /// A variant is kept only when it is at most this share of the original:
    /// smaller savings are not worth a second copy in the binary.
    const KEEP_RATIO: f64 = 0.9;

    pub fn prepare(manifest_dir: &Path) {
        let dist = manifest_dir.join("..").join("dist");
        println!("cargo:rerun-if-changed={}", dist.display());
        if !dist.join("index.html").is_file() {
            eprintln!(
                "error: the `embed` feature puts the built web app into the binary, but {} is \
                 missing: build it first with `trunk build --release` at the repository root",
                dist.join("index.html").display()
            );
            std::process::exit(1);
        }
        let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("web");
        let files = walk(&dist, false);
        for variant in ["identity", "gzip", "br"] {
            let root = out.join(variant);
            fs::create_dir_all(&root).expect("create the embed directory");
            // Files of an earlier build of the app (trunk's names change
            // with their content) must not be embedded.
            for stale in walk(&root, true) {
                if !files.contains(&stale) {
                    fs::remove_file(root.join(&stale)).expect("remove a stale embedded file");
                }
            }
        }
        for file in &files {
            let source = dist.join(file);
            let copy = out.join("identity").join(file);
            if is_stale(&copy, &source) {
                fs::create_dir_all(copy.parent().expect("a file has a parent"))
                    .expect("create the embed directory");
                fs::copy(&source, &copy).expect("copy a web app file");
            }
            let extension = file.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !COMPRESSIBLE.contains(&extension) {
                continue;
            }
            for (variant, compress) in [("gzip", gzip as fn(&[u8]) -> Vec<u8>), ("br", brotli)] {
                let target = out.join(variant).join(file);
                if !is_stale(&target, &source) {
                    continue;
                }
                let original = fs::read(&source).expect("read a web app file");
                let compressed = compress(&original);
                if (compressed.len() as f64) <= original.len() as f64 * KEEP_RATIO {
                    fs::create_dir_all(target.parent().expect("a file has a parent"))
                        .expect("create the embed directory");
                    fs::write(&target, compressed).expect("write a compressed file");
                } else if target.exists() {
                    fs::remove_file(&target).expect("remove a compressed file");
                }
            }
        }
    }

    /// Whether `target` is missing or older than `source`: compressing the
    /// wasm at brotli's best takes seconds, and this script also reruns on
    /// every commit (for the revision).
    fn is_stale(target: &Path, source: &Path) -> bool {
        let modified = |path: &Path| fs::metadata(path).and_then(|m| m.modified()).ok();
        match (modified(target), modified(source)) {
            (Some(target), Some(source)) => target < source,
            _ => true,
        }
    }

    /// Every file under `root`, relative to it, sorted; hidden ones (and
    /// those in hidden directories) only with `hidden`.
    fn walk(root: &Path, hidden: bool) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("read a directory entry").path();
                // Hidden entries are no part of the app (trunk's `.stage/`
                // after a failed build, editors' files).
                let is_hidden = path
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with('.'));
                if is_hidden && !hidden {
                    continue;
                }
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path.strip_prefix(root).expect("under root").to_path_buf());
                }
            }
        }
        files.sort();
        files
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).expect("gzip into memory");
        encoder.finish().expect("gzip into memory")
    }

    fn brotli(data: &[u8]) -> Vec<u8> {
        let params = brotli::enc::BrotliEncoderParams {
            quality: 11,
            lgwin: 22,
            size_hint: data.len(),
            ..Default::default()
        };
        let mut compressed = Vec::new();
        brotli::BrotliCompress(&mut &data[..], &mut compressed, &params)
            .expect("brotli into memory");
        compressed
    }
}
