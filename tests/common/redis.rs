//! Real `redis-server` processes on free loopback ports, started and killed by tests.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nothing listens on right now (and, for clusters, whose bus port
/// `port + 10000` is free too).
pub fn free_port(with_bus: bool) -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !with_bus {
            return port;
        }
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// One redis-server; killed when dropped.
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a standalone server without persistence.
    pub fn start() -> Self {
        Self::start_on(free_port(false))
    }

    /// Starts a standalone server without persistence, with `args` added
    /// to its configuration (`--user ...`, say).
    pub fn start_with(args: &[&str]) -> Self {
        Self::spawn(free_port(false), args.iter().map(|arg| (*arg).to_owned()).collect())
    }

    /// Starts a standalone server on a chosen port (for example one an app
    /// was already told about).
    pub fn start_on(port: u16) -> Self {
        Self::spawn(port, Vec::new())
    }

    fn spawn(port: u16, extra: Vec<String>) -> Self {
        let dir = std::env::temp_dir().join(format!("chatwire-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self { port, dir, extra, child: None };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--dir", self.dir.to_str().unwrap()])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child =
            Some(command.spawn().expect("redis-server must be installed (scripts/test installs it)"));
        wait_for_ping(self.port);
    }

    /// A cluster-enabled node on a free port whose bus port is free too,
    /// taking a master for failed after `node_timeout_ms`.
    fn cluster_node(node_timeout_ms: &str) -> Self {
        let port = free_port(true);
        let config = format!("nodes-{port}.conf");
        let args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            &config,
            "--cluster-node-timeout",
            node_timeout_ms,
        ];
        Self::spawn(port, args.map(String::from).to_vec())
    }

    /// `redis://127.0.0.1:port`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: the server vanishes without a goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (with empty data: no persistence).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Runs a redis-cli command against it and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli(self.port, args)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs redis-cli against a port.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let output =
        Command::new("redis-cli").args(["-p", &port.to_string()]).args(args).output().expect("redis-cli");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn wait_for_ping(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if redis_cli(port, &["ping"]).trim() == "PONG" {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("redis-server on port {port} did not answer PING within 10 s");
}

/// A Redis Cluster of three masters, created with `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> Self {
        Self::start_with_node_timeout(2_000)
    }

    /// A cluster whose nodes take a silent master for failed after
    /// `node_timeout_ms` (the whole cluster then answers `CLUSTERDOWN`, as
    /// it has no replicas): a test that freezes a master for less keeps
    /// the others serving.
    pub fn start_with_node_timeout(node_timeout_ms: u32) -> Self {
        let timeout = node_timeout_ms.to_string();
        let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::cluster_node(&timeout)).collect();
        let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]).args(&addresses).args([
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ]);
        let output = create.output().expect("redis-cli --cluster create");
        assert!(
            output.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &nodes {
            while !node.cli(&["cluster", "info"]).contains("cluster_state:ok") {
                assert!(Instant::now() < deadline, "cluster did not become ready");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Self { nodes }
    }

    /// The index in `nodes` of the master serving hash `slot`, as
    /// `nodes[ask]` sees it (`CLUSTER NODES`).
    pub fn owner(&self, slot: u16, ask: usize) -> usize {
        // `<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot ranges>...`
        let nodes = self.nodes[ask].cli(&["CLUSTER", "NODES"]);
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let serves = fields.iter().skip(8).any(|range| {
                let (first, last) = range.split_once('-').unwrap_or((range, range));
                matches!((first.parse::<u16>(), last.parse::<u16>()), (Ok(first), Ok(last)) if (first..=last).contains(&slot))
            });
            if serves {
                let port: u16 = fields[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
                return self.nodes.iter().position(|node| node.port == port).unwrap();
            }
        }
        panic!("no master serves slot {slot}: {nodes}");
    }

    /// `redis-cluster://127.0.0.1:a,127.0.0.1:b,127.0.0.1:c`
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        format!("redis-cluster://{}", hosts.join(","))
    }
}

// ---------------------------------------------------------------------------
// A Redis Cluster with replicas, whose masters can be killed one by one.
// ---------------------------------------------------------------------------

/// Milliseconds a cluster node may be silent before the others call it
/// failed (redis.conf's default is 15000; a test cannot wait that long).
const FAILOVER_NODE_TIMEOUT_MS: &str = "1000";

/// A Redis Cluster of three masters, each with one replica in sync, whose
/// masters can be SIGKILLed to make their replicas take over.
pub struct ReplicatedCluster {
    /// All six nodes, in the order they were started.
    pub nodes: Vec<RedisServer>,
    /// Indexes into `nodes` of the masters at creation time.
    pub original_masters: Vec<usize>,
}

/// The fields of `INFO` (or `CLUSTER INFO`) output, as `key:value` pairs.
fn info_field(info: &str, key: &str) -> Option<String> {
    info.lines().find_map(|line| line.trim().strip_prefix(key)?.strip_prefix(':').map(str::to_owned))
}

/// Polls `condition` every 50 ms until it holds; panics with `what` after `within`.
fn wait_until(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl ReplicatedCluster {
    /// Creates the cluster and returns once every node agrees it is `ok` and
    /// every replica's link to its master is up (a replica killed or asked to
    /// take over before that cannot).
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> =
            (0..6).map(|_| RedisServer::cluster_node(FAILOVER_NODE_TIMEOUT_MS)).collect();
        let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let output = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            output.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let within = Duration::from_secs(30);
        wait_until("every node did not see all six nodes and cluster_state:ok", within, || {
            nodes.iter().all(|node| {
                let info = node.cli(&["cluster", "info"]);
                info_field(&info, "cluster_state").as_deref() == Some("ok")
                    && info_field(&info, "cluster_known_nodes").as_deref() == Some("6")
            })
        });
        let role = |node: &RedisServer| info_field(&node.cli(&["info", "replication"]), "role");
        wait_until("every replica's link to its master did not come up", within, || {
            nodes.iter().all(|node| {
                let info = node.cli(&["info", "replication"]);
                match info_field(&info, "role").as_deref() {
                    Some("master") => info_field(&info, "connected_slaves").as_deref() == Some("1"),
                    Some("slave") => info_field(&info, "master_link_status").as_deref() == Some("up"),
                    _ => false,
                }
            })
        });
        let original_masters: Vec<usize> =
            (0..nodes.len()).filter(|&i| role(&nodes[i]).as_deref() == Some("master")).collect();
        assert_eq!(original_masters.len(), 3, "three masters expected");
        Self { nodes, original_masters }
    }

    /// `redis-cluster://` listing the original masters only, as a deployment
    /// configured before any failover would.
    pub fn masters_url(&self) -> String {
        let hosts: Vec<String> =
            self.original_masters.iter().map(|&i| format!("127.0.0.1:{}", self.nodes[i].port)).collect();
        format!("redis-cluster://{}", hosts.join(","))
    }

    /// The node id Redis gave `nodes[index]`.
    pub fn node_id(&self, index: usize) -> String {
        self.nodes[index].cli(&["cluster", "myid"]).trim().to_owned()
    }

    /// SIGKILLs `nodes[index]` and returns how long it took the cluster to be
    /// `ok` again without it: the node is marked failed by every survivor,
    /// owns no slots, and every survivor reports `cluster_state:ok`.
    pub fn kill_and_wait_for_failover(&mut self, index: usize, within: Duration) -> Duration {
        let id = self.node_id(index);
        self.nodes[index].kill();
        let killed = Instant::now();
        let survivors: Vec<&RedisServer> =
            self.nodes.iter().enumerate().filter(|(i, _)| *i != index).map(|(_, n)| n).collect();
        wait_until(&format!("node {id} was not failed over"), within, || {
            survivors.iter().all(|node| {
                if node.child.is_none() {
                    return true;
                }
                let line = node.cli(&["cluster", "nodes"]);
                let Some(line) = line.lines().find(|line| line.starts_with(&id)) else { return false };
                // `<id> <addr> <flags> <master> <ping> <pong> <epoch> <link> [slots...]`
                let fields: Vec<&str> = line.split_whitespace().collect();
                let failed = fields.get(2).is_some_and(|flags| flags.split(',').any(|f| f == "fail"));
                let owns_slots = fields.len() > 8;
                failed
                    && !owns_slots
                    && info_field(&node.cli(&["cluster", "info"]), "cluster_state").as_deref() == Some("ok")
            })
        });
        killed.elapsed()
    }
}

impl ReplicatedCluster {
    /// Waits until the replica of `nodes[index]` has acknowledged every write
    /// its master had accepted when this was called: a test that means to
    /// check chatwire, not Redis's asynchronous replication, calls it before
    /// killing that master.
    pub fn wait_replicated(&self, index: usize, within: Duration) {
        let master = &self.nodes[index];
        let offset = |info: &str| -> Option<u64> { info_field(info, "master_repl_offset")?.parse().ok() };
        let written = offset(&master.cli(&["info", "replication"])).expect("master_repl_offset");
        wait_until("the replica did not catch up", within, || {
            // `slave0:ip=127.0.0.1,port=7001,state=online,offset=1234,lag=0`
            let info = master.cli(&["info", "replication"]);
            info_field(&info, "slave0")
                .and_then(|replica| {
                    replica.split(',').find_map(|kv| kv.strip_prefix("offset=")?.parse::<u64>().ok())
                })
                .is_some_and(|acked| acked >= written)
        });
    }
}

// ---------------------------------------------------------------------------
// Redis Sentinel: a primary, one replica and three sentinels.
// ---------------------------------------------------------------------------

/// A primary, its replica and three sentinels watching them (quorum 2,
/// primary down after 1 s); every process is killed when dropped.
pub struct RedisSentinel {
    pub master: RedisServer,
    pub replica: RedisServer,
    /// The name the sentinels monitor the primary under.
    pub service: String,
    sentinels: Vec<(u16, Child)>,
    dir: PathBuf,
}

impl RedisSentinel {
    /// Starts everything and waits until the replica is in sync and every
    /// sentinel knows the replica and the two other sentinels (a failover
    /// needs both).
    pub fn start(service: &str) -> Self {
        let master = RedisServer::start();
        let replica = RedisServer::spawn(
            free_port(false),
            vec!["--replicaof".into(), "127.0.0.1".into(), master.port.to_string()],
        );
        let dir =
            std::env::temp_dir().join(format!("chatwire-sentinel-{}-{}", master.port, std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut sentinel = Self { master, replica, service: service.to_owned(), sentinels: Vec::new(), dir };
        for _ in 0..3 {
            let port = free_port(false);
            let config = sentinel.dir.join(format!("sentinel-{port}.conf"));
            let (dir, name, master) = (sentinel.dir.display(), service, sentinel.master.port);
            std::fs::write(
                &config,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile {dir}/sentinel-{port}.log\n\
                     sentinel monitor {name} 127.0.0.1 {master} 2\n\
                     sentinel down-after-milliseconds {name} 1000\n\
                     sentinel failover-timeout {name} 5000\n"
                ),
            )
            .unwrap();
            let child = Command::new("redis-server")
                .arg(&config)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed (scripts/test installs it)");
            sentinel.sentinels.push((port, child));
            wait_for_ping(port);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !sentinel.replica.cli(&["info", "replication"]).contains("master_link_status:up") {
            assert!(Instant::now() < deadline, "the replica did not sync with the primary within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Sentinels find replicas through the primary's INFO (every 10 s)
        // and each other through hello messages (every 2 s).
        for port in sentinel.sentinel_ports() {
            loop {
                let fields = sentinel_fields(&redis_cli(port, &["sentinel", "master", service]));
                let known = |field: &str| fields.get(field).map(String::as_str);
                if known("num-slaves") == Some("1") && known("num-other-sentinels") == Some("2") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "sentinel {port} does not know everyone after 30 s: {fields:?}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        sentinel
    }

    /// The sentinels' ports.
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|(port, _)| *port).collect()
    }

    /// `redis-sentinel://127.0.0.1:s1/0?sentinelServiceName=...&node=127.0.0.1:s2&node=127.0.0.1:s3`
    pub fn url(&self) -> String {
        let ports = self.sentinel_ports();
        let nodes: String = ports[1..].iter().map(|port| format!("&node=127.0.0.1:{port}")).collect();
        format!("redis-sentinel://127.0.0.1:{}/0?sentinelServiceName={}{nodes}", ports[0], self.service)
    }

    /// The primary's port according to the sentinel on `port`.
    pub fn master_port_by(&self, port: u16) -> Option<u16> {
        let reply = redis_cli(port, &["sentinel", "get-master-addr-by-name", &self.service]);
        reply.lines().nth(1)?.trim().parse().ok()
    }

    /// Blocks until a sentinel names a primary other than `old` and returns
    /// when that was first seen. One sentinel is asked every 50 ms in turn
    /// (one `redis-cli` at a time, so the apps under test keep the CPU); the
    /// promotion is seen at most 150 ms late.
    pub fn wait_for_new_master(&self, old: u16, within: Duration) -> Instant {
        let deadline = Instant::now() + within;
        let ports = self.sentinel_ports();
        for turn in 0.. {
            let port = ports[turn % ports.len()];
            if let Some(master) = self.master_port_by(port).filter(|master| *master != old) {
                assert_eq!(master, self.replica.port, "sentinel {port} promoted the replica");
                return Instant::now();
            }
            assert!(Instant::now() < deadline, "no sentinel promoted the replica within {within:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        unreachable!("`0..` does not end")
    }

    /// Blocks until the old primary reports `ROLE` slave (Sentinel
    /// reconfigures it some seconds after a switchover).
    pub fn wait_old_master_demoted(&self, within: Duration) {
        wait_until("the old primary was turned into a replica", within, || {
            self.master.cli(&["role"]).starts_with("slave")
        });
    }

    /// Waits until the replica's copy has everything the primary has written.
    pub fn wait_replicated(&self) {
        let offset = |info: &str, field: &str| -> u64 {
            let line = info.lines().find(|line| line.starts_with(field)).unwrap_or_default();
            line.split(':').nth(1).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
        };
        let target = offset(&self.master.cli(&["info", "replication"]), "master_repl_offset:");
        let deadline = Instant::now() + Duration::from_secs(10);
        while offset(&self.replica.cli(&["info", "replication"]), "slave_repl_offset:") < target {
            assert!(Instant::now() < deadline, "the replica did not catch up within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A reply of `SENTINEL MASTER`, one field or value per line, as a map.
fn sentinel_fields(reply: &str) -> std::collections::HashMap<String, String> {
    let lines: Vec<&str> = reply.lines().map(str::trim).collect();
    lines.chunks(2).filter_map(|pair| Some((pair.first()?.to_string(), pair.get(1)?.to_string()))).collect()
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        for (_, child) in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("sentinel logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl RedisServer {
    /// SIGSTOP: the server keeps its connections open but answers nothing,
    /// as behind a network partition. (Drop still kills it.)
    pub fn freeze(&self) {
        let pid = self.child.as_ref().expect("the server is running").id();
        let status = Command::new("kill").args(["-STOP", &pid.to_string()]).status().expect("run kill");
        assert!(status.success());
    }

    /// SIGCONT: a frozen server goes on where it stopped.
    pub fn thaw(&self) {
        let pid = self.child.as_ref().expect("the server is running").id();
        let status = Command::new("kill").args(["-CONT", &pid.to_string()]).status().expect("run kill");
        assert!(status.success());
    }
}
