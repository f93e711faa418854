//! The client's own durable record of its channels: the latest state signed by both, kept
//! so the client can always settle on chain without the hub. One JSON file per channel,
//! replaced atomically (write, fsync, rename, fsync the directory).

use std::io::Write;
use std::path::{Path, PathBuf};

use alloy::primitives::B256;
use serde::{Deserialize, Serialize};

use crate::api::FullySignedState;
use crate::bindings::Channel::Params;
use crate::virtual_channel::VirtualRecord;

/// What the client keeps about one basic channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelRecord {
    /// Params.
    pub params: Params,
    /// The hub's participant index.
    pub hub_index: u8,
    /// The latest state signed by both.
    pub latest: FullySignedState,
}

impl ChannelRecord {
    /// The channel id.
    pub fn id(&self) -> B256 {
        self.latest.state.channelId
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// File system error.
    #[error("channel store: {0}")]
    Io(#[from] std::io::Error),
    /// A file does not hold a channel record.
    #[error("channel store: corrupt record {path}: {error}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: String,
    },
    /// Refused to go back to an older version.
    #[error("channel store: version {new} would replace newer version {stored}")]
    Older {
        /// Stored version.
        stored: u64,
        /// Offered version.
        new: u64,
    },
}

/// A directory of channel records.
#[derive(Debug, Clone)]
pub struct ChannelStore {
    dir: PathBuf,
}

impl ChannelStore {
    /// Opens (creating) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        Ok(Self { dir: dir.to_path_buf() })
    }

    fn path(&self, id: B256) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn virtual_path(&self, id: B256) -> PathBuf {
        self.dir.join("virtual").join(format!("{id}.json"))
    }

    /// Writes `value` to `path` atomically and durably.
    fn write(&self, path: &Path, value: &impl Serialize) -> Result<(), StoreError> {
        let dir = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(dir)?;
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        let json = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
        file.write_all(&json)?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|e| e.error)?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    }

    fn read<T: serde::de::DeserializeOwned>(path: PathBuf) -> Result<Option<T>, StoreError> {
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map(Some).map_err(|e| StoreError::Corrupt { path, error: e.to_string() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Saves a virtual channel's record durably, refusing to replace a newer version.
    pub fn save_virtual(&self, record: &VirtualRecord) -> Result<(), StoreError> {
        if let Some(stored) = self.load_virtual(record.id())? {
            let (stored, new) = (stored.latest.state.version, record.latest.state.version);
            if new < stored {
                return Err(StoreError::Older { stored, new });
            }
        }
        self.write(&self.virtual_path(record.id()), record)
    }

    /// Loads the record of virtual channel `id`, if any.
    pub fn load_virtual(&self, id: B256) -> Result<Option<VirtualRecord>, StoreError> {
        Self::read(self.virtual_path(id))
    }

    /// Saves `record` durably, refusing to replace a newer version.
    pub fn save(&self, record: &ChannelRecord) -> Result<(), StoreError> {
        if let Some(stored) = self.load(record.id())? {
            let (stored, new) = (stored.latest.state.version, record.latest.state.version);
            if new < stored {
                return Err(StoreError::Older { stored, new });
            }
        }
        self.write(&self.path(record.id()), record)
    }

    /// Loads the record of channel `id`, if any.
    pub fn load(&self, id: B256) -> Result<Option<ChannelRecord>, StoreError> {
        Self::read(self.path(id))
    }

    /// Every record in the store.
    pub fn list(&self) -> Result<Vec<ChannelRecord>, StoreError> {
        let mut records = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let bytes = std::fs::read(&path)?;
                records.push(
                    serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt { path, error: e.to_string() })?,
                );
            }
        }
        Ok(records)
    }
}
