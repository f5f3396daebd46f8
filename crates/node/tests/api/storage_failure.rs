//! A log that cannot be written stops the sequencer with the storage error, returned to the
//! node (no `process::exit` in the library), and nothing of the unwritten work is acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redb::StorageBackend;
use redb::backends::InMemoryBackend;
use zkl_node::NodeConfig;
use zkl_node::sequencer::{Sequencer, SequencerError, SequencerHandle};
use zkl_node::storage::Storage;
use zkl_state::testkit::{ETH, ONE, User, deposit};

/// In memory, until `fail` is set: then every write and sync is an I/O error (a full disk).
#[derive(Debug)]
struct Failing {
    inner: InMemoryBackend,
    fail: Arc<AtomicBool>,
}

impl Failing {
    fn check(&self) -> Result<(), std::io::Error> {
        if self.fail.load(Ordering::SeqCst) { Err(std::io::Error::other("no space left on device")) } else { Ok(()) }
    }
}

impl StorageBackend for Failing {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.check()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.check()?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.check()?;
        self.inner.write(offset, data)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_log_write_stops_the_sequencer_with_the_error_and_acknowledges_nothing() {
    let fail = Arc::new(AtomicBool::new(false));
    let storage =
        Arc::new(Storage::with_backend(Failing { inner: InMemoryBackend::new(), fail: fail.clone() }).unwrap());
    let config = NodeConfig::demo(std::env::temp_dir());
    let seq =
        Sequencer::recover(zkl_node::genesis(&config).unwrap(), storage.clone(), Duration::from_secs(60)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = SequencerHandle { tx };
    let thread = std::thread::spawn(move || seq.run(rx));

    let (a, b) = (User::new(1), User::new(2));
    handle.priority(deposit(1, 0, a.address, ETH, ETH, ONE)).await.expect("written while the disk works");
    assert_eq!(storage.log().unwrap().len(), 1);

    fail.store(true, Ordering::SeqCst);
    let refused = handle.priority(deposit(1, 1, b.address, ETH, ETH, ONE)).await.unwrap_err();
    assert_eq!(refused, SequencerError::Stopped);
    let err = thread.join().expect("no panic").expect_err("the sequencer returns the storage error");
    assert!(err.to_string().contains("no space left on device"), "{err}");
    // Nothing after the failure reached the log.
    fail.store(false, Ordering::SeqCst);
    assert_eq!(storage.log().unwrap().len(), 1);
}
