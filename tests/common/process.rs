//! The `chatwire` binary as a child process: started on a free port,
//! its log lines captured, stopped with SIGTERM or killed with SIGKILL.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running chatwire process; killed when dropped.
pub struct Process {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
    /// The threads reading stdout and stderr, joined once the process exits
    /// so that its last lines are in `logs`.
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Appends each line of `stream` to `logs`, from a thread of its own.
fn collect_lines(
    stream: impl std::io::Read + Send + 'static,
    logs: Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if std::env::var_os("TEST_LOG").is_some() {
                eprintln!("[chatwire] {line}");
            }
            logs.lock().unwrap().push(line);
        }
    })
}

impl Process {
    /// An instance on the Redis at `url`, with heartbeats too slow to
    /// matter (a 30 s time-to-live): it notices a killed instance by its
    /// closed connections only, once it watches it (see [`Self::watching`]).
    pub fn in_cluster(url: &str, prefix: &str, name: &str) -> Self {
        let env = [
            ("REDIS_URL", url),
            ("REDIS_PREFIX", prefix),
            ("INSTANCE_NAME", name),
            ("INSTANCE_TTL_MS", "30000"),
        ];
        Self::start(&env)
    }

    /// Waits until this instance watches `others` other instances' connections.
    pub fn watching(&self, others: usize) {
        self.wait_for_log(
            &format!("watching the other instances' connections instances={others}"),
            Duration::from_secs(15),
        );
    }

    /// A client of this process, logged in as `name`.
    pub async fn user(&self, name: &str) -> super::Client {
        let client = super::Client::connect(self.addr).await;
        let reply = client.request("add user", serde_json::json!(name)).await;
        assert_eq!(reply["ok"], true, "{name} logs in: {reply}");
        client
    }

    /// Starts the binary on 127.0.0.1, port 0, with `env` added, and waits
    /// for the line that says where it listens.
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::launch(Command::new(env!("CARGO_BIN_EXE_chatwire")), env)
    }

    /// Like [`Self::start`], under an open-files limit of `limit` (soft and
    /// hard, set by util-linux's `prlimit`, which then runs the binary).
    pub fn start_with_open_files(limit: u64, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new("prlimit");
        command.arg(format!("--nofile={limit}:{limit}")).arg(env!("CARGO_BIN_EXE_chatwire"));
        Self::launch(command, env)
    }

    fn launch(mut command: Command, env: &[(&str, &str)]) -> Self {
        command
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("RUST_LOG", "info")
            .env_remove("REDIS_URL")
            .env("SECRET", super::TEST_SECRET)
            .env("PUBLIC_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/public"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        // In the guard at once, so a failed start still kills the process.
        let mut process = Self {
            child: command.spawn().expect("start chatwire"),
            addr: ([0, 0, 0, 0], 0).into(),
            logs: Arc::default(),
            readers: Vec::new(),
        };
        // stderr too: that is where a panic goes.
        let stdout = process.child.stdout.take().expect("piped stdout");
        let stderr = process.child.stderr.take().expect("piped stderr");
        process.readers.push(collect_lines(stdout, process.logs.clone()));
        process.readers.push(collect_lines(stderr, process.logs.clone()));
        let line = process.wait_for_log("listening on http://", Duration::from_secs(10));
        let rest = line.split("listening on http://").nth(1).unwrap();
        process.addr = rest.split_whitespace().next().unwrap().parse().expect("address in the log line");
        process
    }

    /// Waits for a log line containing `needle` and returns it.
    pub fn wait_for_log(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.logs.lock().unwrap().iter().find(|line| line.contains(needle)) {
                return line.clone();
            }
            assert!(Instant::now() < deadline, "no log line with {needle:?} within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every log line so far, joined by newlines.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (a graceful stop).
    pub fn terminate(&self) {
        self.signal("-TERM");
    }

    /// SIGSTOP: the process stops in its tracks, connections left open.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT: a frozen process goes on.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.pid().to_string()]).status().expect("run kill");
        assert!(status.success());
    }

    /// How many log lines so far contain `needle`.
    pub fn count_logs(&self, needle: &str) -> usize {
        self.logs.lock().unwrap().iter().filter(|line| line.contains(needle)).count()
    }

    /// SIGKILL: the process dies without cleaning up anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // The pipes close with the process: the readers end.
                for reader in self.readers.drain(..) {
                    let _ = reader.join();
                }
                return status;
            }
            assert!(Instant::now() < deadline, "did not exit within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
