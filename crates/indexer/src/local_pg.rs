//! A PostgreSQL server of its own, for tests and the devnet: Debian's binaries
//! (`/usr/lib/postgresql/<version>/bin`, installed by `scripts/setup-postgres.sh`), a fresh
//! cluster in a temporary directory, listening on 127.0.0.1 at a free port with trust
//! authentication and no fsync (development only), stopped and deleted on drop. Run as root, the
//! server runs as the `postgres` user (PostgreSQL refuses root).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::IndexerError;

/// The directory with `initdb` and `postgres`: `$PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin`, else wherever `initdb` is on `PATH`.
pub fn bin_dir() -> Option<PathBuf> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Some(d) = std::env::var_os("PG_BIN").map(PathBuf::from) {
        return has(&d).then_some(d);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, d)| has(d))
        .collect();
    versions.sort();
    if let Some((_, d)) = versions.pop() {
        return Some(d);
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| has(d))
}

/// A running server; dropping it stops the server and deletes its cluster.
pub struct LocalPostgres {
    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub url: String,
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

fn failed(what: &str) -> impl Fn(std::io::Error) -> IndexerError + '_ {
    move |e| IndexerError::Database(format!("local PostgreSQL: {what}: {e}"))
}

/// The `postgres` user's uid and gid, from /etc/passwd.
fn postgres_user() -> Result<(u32, u32), IndexerError> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(failed("/etc/passwd"))?;
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"postgres") && f.len() > 3).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
        .ok_or_else(|| IndexerError::Database("local PostgreSQL: run as root, it needs the postgres user".into()))
}

impl LocalPostgres {
    /// Creates a cluster and starts its server; returns once it accepts connections.
    pub fn start() -> Result<Self, IndexerError> {
        let bin = bin_dir().ok_or_else(|| {
            IndexerError::Database(
                "no PostgreSQL server binaries (initdb, postgres): install them with scripts/setup-postgres.sh".into(),
            )
        })?;
        let dir = tempfile::Builder::new().prefix("zkl-pg-").tempdir().map_err(failed("temporary directory"))?;
        let root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
        let user = if root { Some(postgres_user()?) } else { None };
        if let Some((uid, gid)) = user {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).map_err(failed("chmod"))?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(failed("chown"))?;
        }
        let data = dir.path().join("data");
        let as_user = |cmd: &mut Command| {
            if let Some((uid, gid)) = user {
                cmd.uid(uid).gid(gid);
            }
        };
        let mut init = Command::new(bin.join("initdb"));
        init.arg("-D").arg(&data).args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]);
        as_user(&mut init);
        let out = init.stdin(Stdio::null()).output().map_err(failed("initdb"))?;
        if !out.status.success() {
            return Err(IndexerError::Database(format!(
                "local PostgreSQL: initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(failed("free port"))?
            .port();
        let log = std::fs::File::create(dir.path().join("server.log")).map_err(failed("log"))?;
        let mut server = Command::new(bin.join("postgres"));
        server
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
        as_user(&mut server);
        let child = server
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(failed("log"))?)
            .stderr(log)
            .spawn()
            .map_err(failed("postgres"))?;
        let mut pg = LocalPostgres { url: format!("postgres://postgres@127.0.0.1:{port}/postgres"), port, child, dir };
        let started = Instant::now();
        loop {
            if let Some(status) = pg.child.try_wait().map_err(failed("postgres"))? {
                let log = std::fs::read_to_string(pg.dir.path().join("server.log")).unwrap_or_default();
                return Err(IndexerError::Database(format!("local PostgreSQL exited ({status}): {}", log.trim())));
            }
            // Ready once it accepts a connection and has finished starting up.
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(pg);
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(IndexerError::Database("local PostgreSQL did not start within 60 s".into()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log.
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        // SIGINT: fast shutdown (rolls back open transactions, removes its shared memory).
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
