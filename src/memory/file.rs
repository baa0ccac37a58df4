//! The native store: one directory holding `memory.json` (everything, value heads as
//! base64) and a `lock` file.
//!
//! Every change rewrites `memory.json` atomically — written to a temporary file, fsynced,
//! renamed over the old one, and the directory fsynced — so a crash leaves either the old
//! memory or the new one, never a torn file. An exclusive lock on `lock` (shared for reads)
//! serialises writers across processes, so two `padlock feedback` runs at once lose nothing.
//!
//! The files are created readable by their owner only (0600, directory 0700). They are not
//! encrypted: on a desktop the operating system's account is the boundary (the browser
//! store, whose files sit in a shared profile, encrypts every record).

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::schema::{FeedbackV1, PreferenceV1, CURRENT_VERSION};
use super::{now_millis, Contents, FeedbackEvent, Loaded, Preference, Profile, Store, ValueHead, Write};
use crate::error::{Error, ErrorCode, Result};

const MEMORY_FILE: &str = "memory.json";
const LOCK_FILE: &str = "lock";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileV2 {
    version: u32,
    revision: u64,
    #[serde(default)]
    profile: Option<Profile>,
    #[serde(default)]
    preferences: Vec<Preference>,
    #[serde(default)]
    events: Vec<FeedbackEvent>,
    #[serde(default)]
    value_heads: Vec<ValueHead>,
}

#[derive(Deserialize)]
struct FileV1 {
    #[allow(dead_code)]
    version: u32,
    #[serde(default)]
    preferences: Vec<PreferenceV1>,
    #[serde(default)]
    feedback: Vec<FeedbackV1>,
}

#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

/// A memory kept in a directory on disk.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    let code = match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => ErrorCode::QuotaExceeded,
        _ => ErrorCode::Storage,
    };
    Error::new(code, format!("{what} {}: {e}", path.display()))
}

impl FileStore {
    /// The store in `dir`, without touching the disk (`forget` on a damaged store needs no more).
    pub fn at(dir: impl AsRef<Path>) -> Self {
        FileStore { dir: dir.as_ref().to_path_buf() }
    }

    /// Opens (creating if needed) the memory in `dir`, bringing an older schema forward.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let store = FileStore::at(dir);
        create_private_dir(&store.dir)?;
        let _lock = store.lock(true)?;
        let path = store.memory_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(store),
            Err(e) => return Err(io_error("cannot read", &path, e)),
        };
        let version: VersionOnly = serde_json::from_slice(&bytes).map_err(|e| damaged(&path, e))?;
        match version.version {
            1 => {
                let v1: FileV1 = serde_json::from_slice(&bytes).map_err(|e| damaged(&path, e))?;
                let now = now_millis();
                let migrated = FileV2 {
                    version: CURRENT_VERSION,
                    revision: 1,
                    profile: None,
                    preferences: v1.preferences.into_iter().map(|p| p.migrate(now)).collect(),
                    events: v1.feedback.into_iter().enumerate().map(|(i, f)| f.migrate(i as u64 + 1)).collect(),
                    value_heads: Vec::new(),
                };
                store.write_file(&migrated)?;
            }
            CURRENT_VERSION => {}
            v => crate::bail!(
                SchemaVersion,
                "{} was written by a newer padlock (schema {v}; this one reads up to {CURRENT_VERSION})",
                path.display()
            ),
        }
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn memory_path(&self) -> PathBuf {
        self.dir.join(MEMORY_FILE)
    }

    /// Holds the directory's lock (exclusive for writers) until the returned file is dropped.
    fn lock(&self, exclusive: bool) -> Result<File> {
        let path = self.dir.join(LOCK_FILE);
        let file = private_options().read(true).write(true).create(true).truncate(false).open(&path);
        let file = file.map_err(|e| io_error("cannot open", &path, e))?;
        if exclusive { file.lock() } else { file.lock_shared() }.map_err(|e| io_error("cannot lock", &path, e))?;
        Ok(file)
    }

    fn read(&self) -> Result<FileV2> {
        let path = self.memory_path();
        match fs::read(&path) {
            Ok(bytes) => {
                let file: FileV2 = serde_json::from_slice(&bytes).map_err(|e| damaged(&path, e))?;
                if file.version != CURRENT_VERSION {
                    crate::bail!(SchemaVersion, "{} has schema {}; reopen the store", path.display(), file.version);
                }
                Ok(file)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(FileV2 { version: CURRENT_VERSION, ..Default::default() })
            }
            Err(e) => Err(io_error("cannot read", &path, e)),
        }
    }

    fn read_locked(&self) -> Result<FileV2> {
        let _lock = self.lock(false)?;
        self.read()
    }

    /// Write to a temporary file, fsync, rename over `memory.json`, fsync the directory.
    fn write_file(&self, file: &FileV2) -> Result<()> {
        let bytes = serde_json::to_vec(file)
            .map_err(|e| Error::new(ErrorCode::Storage, format!("cannot encode the memory: {e}")))?;
        let path = self.memory_path();
        let tmp = self.dir.join(format!(".{MEMORY_FILE}.{}.tmp", super::new_id()?));
        let written = (|| {
            let mut f = private_options().write(true).create_new(true).open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_error("cannot write", &path, e));
        }
        Ok(())
    }
}

fn damaged(path: &Path, e: serde_json::Error) -> Error {
    Error::new(ErrorCode::Storage, format!("{} is damaged: {e}", path.display()))
}

fn private_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(|e| io_error("cannot create", dir, e))
}

fn loaded<T>(revision: u64, items: Vec<T>) -> Loaded<T> {
    Loaded { revision, items, unreadable: Vec::new() }
}

impl Store for FileStore {
    async fn preferences(&self) -> Result<Loaded<Preference>> {
        let f = self.read_locked()?;
        Ok(loaded(f.revision, f.preferences))
    }

    async fn events(&self) -> Result<Loaded<FeedbackEvent>> {
        let f = self.read_locked()?;
        Ok(loaded(f.revision, f.events))
    }

    async fn profile(&self) -> Result<Option<Profile>> {
        Ok(self.read_locked()?.profile)
    }

    async fn value_heads(&self) -> Result<Loaded<ValueHead>> {
        let f = self.read_locked()?;
        Ok(loaded(f.revision, f.value_heads))
    }

    async fn write(&self, writes: &[Write], expect_revision: Option<u64>) -> Result<bool> {
        let _lock = self.lock(true)?;
        let mut f = self.read()?;
        if expect_revision.is_some_and(|r| r != f.revision) {
            return Ok(false);
        }
        for w in writes {
            match w {
                Write::PutPreference(p) => match f.preferences.iter_mut().find(|q| q.id == p.id) {
                    Some(q) => *q = p.clone(),
                    None => f.preferences.push(p.clone()),
                },
                Write::DeletePreference(id) => f.preferences.retain(|p| &p.id != id),
                Write::AddEvent(e) => {
                    if f.events.iter().any(|x| x.id == e.id) {
                        crate::bail!(Storage, "a feedback event with the id {:?} is already stored", e.id);
                    }
                    f.events.push(e.clone());
                }
                Write::PutProfile(p) => f.profile = Some(p.clone()),
                Write::PutValueHead(h) => match f.value_heads.iter_mut().find(|x| x.name == h.name) {
                    Some(x) => *x = h.clone(),
                    None => f.value_heads.push(h.clone()),
                },
                Write::DeleteValueHead(name) => f.value_heads.retain(|h| &h.name != name),
            }
        }
        f.revision += 1;
        self.write_file(&f)?;
        Ok(true)
    }

    async fn replace(&self, contents: &Contents) -> Result<()> {
        let _lock = self.lock(true)?;
        let revision = self.read().map(|f| f.revision).unwrap_or(0) + 1;
        self.write_file(&FileV2 {
            version: CURRENT_VERSION,
            revision,
            profile: Some(contents.profile.clone()),
            preferences: contents.preferences.clone(),
            events: contents.events.clone(),
            value_heads: contents.value_heads.clone(),
        })
    }

    async fn destroy(&self) -> Result<()> {
        let lock = self.lock(true)?;
        for name in [MEMORY_FILE, LOCK_FILE] {
            let path = self.dir.join(name);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("cannot delete", &path, e)),
            }
        }
        drop(lock);
        // The directory goes too, unless someone put other files in it.
        let _ = fs::remove_dir(&self.dir);
        Ok(())
    }
}
