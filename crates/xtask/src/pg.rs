//! The PostgreSQL the suite runs against: the one the environment names, or a throwaway cluster of xtask's own.

use crate::sys;
use anyhow::{bail, Context, Result};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::runtime::Runtime;

/// The variable the tests read; xtask reads it too and sets it for the test run.
pub const URL_VAR: &str = "LATCHKEY_TEST_POSTGRES_URL";

/// How long a connection check may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A PostgreSQL server for the test run; dropping it stops and deletes a cluster xtask started.
pub enum Postgres {
    /// A server someone else runs, named by `LATCHKEY_TEST_POSTGRES_URL`.
    External(String),
    /// A throwaway cluster started for this run.
    Own(Cluster),
}

impl Postgres {
    /// The URL the tests connect to.
    pub fn url(&self) -> &str {
        match self {
            Postgres::External(url) => url,
            Postgres::Own(c) => &c.url,
        }
    }
}

/// The server named by `LATCHKEY_TEST_POSTGRES_URL` once it answers, else a throwaway cluster.
pub fn provide(rt: &Runtime) -> Result<Postgres> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => {
            let shown = redact(&url);
            eprintln!("xtask: using the PostgreSQL at {shown} ({URL_VAR})");
            // Fail here, loudly: the tests would fail too, but hundreds of times over.
            check(rt, &url).with_context(|| {
                format!(
                    "{URL_VAR} is {shown}, but PostgreSQL cannot be used there; start it, fix the URL, \
                     or unset {URL_VAR} to have xtask start a throwaway cluster of its own"
                )
            })?;
            Ok(Postgres::External(url))
        }
        _ => {
            eprintln!("xtask: {URL_VAR} is not set: starting a throwaway PostgreSQL cluster");
            let cluster = Cluster::start(rt).with_context(|| {
                format!(
                    "could not start a throwaway PostgreSQL cluster; install Debian's `postgresql` package \
                     (`sudo apt-get install postgresql`), or set {URL_VAR} to a server you run, e.g. \
                     postgres://postgres@127.0.0.1:5432/test"
                )
            })?;
            eprintln!("xtask: PostgreSQL is up at {} (data in {})", cluster.url, cluster.dir.display());
            Ok(Postgres::Own(cluster))
        }
    }
}

/// Connects to `url` and runs `select 1`, within [`CONNECT_TIMEOUT`].
fn check(rt: &Runtime, url: &str) -> Result<()> {
    rt.block_on(async {
        let work = async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            let connection = tokio::spawn(connection);
            client.simple_query("select 1").await?;
            drop(client);
            let _ = connection.await;
            Ok::<_, tokio_postgres::Error>(())
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, work).await {
            Ok(result) => result.context("cannot connect"),
            Err(_) => bail!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
        }
    })
}

/// `url` with any password replaced, so it can be printed in logs.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

/// A throwaway PostgreSQL cluster in a temporary directory; stopped and deleted on drop.
pub struct Cluster {
    /// Holds the data directory, the socket and the server log.
    dir: PathBuf,
    /// Where initdb, pg_ctl and postgres are.
    bin: PathBuf,
    /// Whether to run the server as the `postgres` user (because we are root).
    as_postgres: bool,
    /// The URL the tests connect to.
    url: String,
}

impl Cluster {
    /// Creates, starts and checks a cluster with trust authentication on a free local port.
    fn start(rt: &Runtime) -> Result<Cluster> {
        let bin = match find_bin() {
            Some(bin) => bin,
            None => {
                eprintln!("xtask: initdb and pg_ctl not found");
                sys::apt_install(&["postgresql"]).context("could not install PostgreSQL")?;
                find_bin().context("apt-get installed postgresql, yet initdb and pg_ctl are not to be found")?
            }
        };
        // initdb refuses to run as root: run the server as the user Debian's package creates.
        let as_postgres = sys::is_root();
        if as_postgres && !sys::user_exists("postgres") {
            bail!("running as root, where initdb refuses to run, and there is no `postgres` user to run it as");
        }
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        // The postgres user must be able to reach the directory: a root's TMPDIR may be under /root.
        let tmp = if as_postgres { PathBuf::from("/tmp") } else { std::env::temp_dir() };
        let dir = tmp.join(format!("latchkey-test-pg-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        // From here on, dropping `cluster` (on any error below) stops the server and deletes the directory.
        let mut cluster = Cluster { dir, bin, as_postgres, url: String::new() };
        if as_postgres {
            sys::run_captured(Command::new("chown").arg("postgres:").arg(&cluster.dir))?;
        }
        cluster.initdb()?;
        // The free port can be taken between our check and the server's bind: try again then.
        let mut attempt = 0;
        let port = loop {
            sys::bail_if_interrupted()?;
            let port = free_port()?;
            match cluster.pg_ctl_start(port) {
                Ok(()) => break port,
                Err(e) if attempt < 2 => {
                    eprintln!("xtask: PostgreSQL did not start on port {port}, trying another: {e:#}")
                }
                Err(e) => return Err(e),
            }
            attempt += 1;
        };
        cluster.url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        check(rt, &cluster.url).context("the throwaway PostgreSQL started but does not answer")?;
        Ok(cluster)
    }

    /// The cluster's data directory.
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A command running `program` from the PostgreSQL binaries, as the `postgres` user if we are root.
    fn pg_command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        let mut cmd = if !self.as_postgres {
            Command::new(exe)
        } else if sys::find_program("runuser", &["/usr/sbin", "/sbin"]).is_some() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            // su passes the words after the -c script to it as $0, $1, …: no quoting needed.
            let mut c = Command::new("su");
            c.args(["postgres", "-s", "/bin/sh", "-c", "exec \"$0\" \"$@\""]).arg(exe);
            c
        };
        // The postgres user may not be allowed into our working directory.
        cmd.current_dir(&self.dir);
        cmd
    }

    /// Creates the cluster: superuser `postgres`, trust authentication, no fsync (it is thrown away).
    fn initdb(&self) -> Result<()> {
        let mut cmd = self.pg_command("initdb");
        cmd.arg("-D").arg(self.data()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        ]);
        sys::run_captured(&mut cmd).map(drop)
    }

    /// Starts the server on `port` and waits until it accepts connections.
    fn pg_ctl_start(&self, port: u16) -> Result<()> {
        let log = self.dir.join("postgres.log");
        // Durability is pointless for a cluster deleted after the run; these make the suite faster.
        let options = format!(
            "-k '{}' -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.dir.display()
        );
        let mut cmd = self.pg_command("pg_ctl");
        cmd.arg("-D").arg(self.data()).arg("-l").arg(&log).args(["-w", "-t", "60", "-o", &options, "start"]);
        sys::run_captured(&mut cmd).map(drop).map_err(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            e.context(format!("the server log says:\n{}", sys::tail(&log)))
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            let mut cmd = self.pg_command("pg_ctl");
            cmd.arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"]).stdin(Stdio::null());
            match sys::run_captured(&mut cmd) {
                Ok(_) => eprintln!("xtask: stopped the throwaway PostgreSQL"),
                Err(e) => eprintln!("xtask: could not stop the throwaway PostgreSQL: {e:#}"),
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("xtask: could not delete {}: {e}", self.dir.display());
        }
    }
}

/// The directory with initdb and pg_ctl: on PATH, else Debian's newest /usr/lib/postgresql/<version>/bin.
pub fn find_bin() -> Option<PathBuf> {
    // Resolve symlinks (e.g. /usr/local/bin/pg_ctl): initdb must sit next to the real pg_ctl.
    let on_path = sys::find_program("pg_ctl", &[])
        .and_then(|p| std::fs::canonicalize(p).ok())
        .and_then(|p| p.parent().map(Path::to_path_buf));
    if let Some(dir) = on_path.filter(|d| d.join("initdb").is_file()) {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("pg_ctl").is_file() && bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A local port nothing listens on right now.
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind a local port")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://postgres@127.0.0.1:5432/test"), "postgres://postgres@127.0.0.1:5432/test");
        assert_eq!(redact("host=/tmp user=x"), "host=/tmp user=x");
    }
}
