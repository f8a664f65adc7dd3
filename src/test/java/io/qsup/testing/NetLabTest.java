package io.qsup.testing;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The lab's network: three hosts in their own namespaces reach each other and an etcd on the bridge; a partition cuts
 * exactly the partitioned host's paths; heal restores them; close (and the exit of a JVM that never called it, and
 * even a SIGKILLed JVM's lab, on the next lab) leaves no namespace, link or process behind.
 */
class NetLabTest {
    private static final int PORT = 7077;
    private final List<Process> listeners = new ArrayList<>();
    private NetLab lab;
    private EtcdCluster etcd;
    private Path dir;

    @BeforeEach
    void setUp() throws IOException {
        Assumptions.assumeTrue(NetLab.canRun(), "network namespaces need root; not run as this user");
        Assumptions.assumeTrue(EtcdClusterTest.hasEtcd(), "etcd is not installed; scripts/setup installs it");
        dir = Files.createTempDirectory(Path.of("/tmp"), "qsnet");
    }

    @AfterEach
    void tearDown() {
        if (etcd != null) {
            etcd.close();
        }
        if (lab != null) {
            lab.close();
        }
        listeners.forEach(Process::destroyForcibly);
        Command.run("rm", "-rf", dir.toString());
    }

    @Test
    void hostsReachEachOtherAndEtcdAndAPartitionCutsExactlyThatHost() throws Exception {
        lab = NetLab.create(3);
        assertThat(lab.bridge().length()).isLessThanOrEqualTo(15);
        lab.hosts().forEach(h -> assertThat(lab.veth(h).length()).isLessThanOrEqualTo(15));
        etcd = EtcdCluster.start(lab.bridgeAddress(), dir, Duration.ofSeconds(30));
        for (String h : lab.hosts()) {
            listeners.add(new ProcessBuilder(lab.inHost(h, List.of("socat", "-u",
                    "TCP-LISTEN:" + PORT + ",bind=" + lab.address(h) + ",fork,reuseaddr", "OPEN:/dev/null")))
                    .redirectErrorStream(true).redirectOutput(dir.resolve("socat-" + h + ".log").toFile()).start());
        }
        awaitListening();

        assertThat(reachability()).as("everything reaches everything").allSatisfy((path, ok) -> assertThat(ok)
                .as(path).isTrue());
        for (String h : lab.hosts()) {
            assertThat(etcdHealthFrom(h)).as("etcd's /health from %s", h).contains("\"health\":\"true\"");
        }

        lab.partition("h2");
        assertThat(lab.isPartitioned("h2")).isTrue();
        Map<String, Boolean> cut = reachability();
        cut.forEach((path, ok) -> assertThat(ok).as(path).isEqualTo(!path.contains("h2")));
        assertThat(etcdHealthFrom("h2")).as("etcd from the partitioned host").doesNotContain("health");
        assertThat(etcdHealthFrom("h1")).contains("\"health\":\"true\"");

        lab.heal("h2");
        assertThat(reachability()).as("healed, at once").allSatisfy((path, ok) -> assertThat(ok).as(path).isTrue());
        assertThat(etcdHealthFrom("h2")).contains("\"health\":\"true\"");

        List<Long> inside = lab.pidsIn("h1");
        assertThat(inside).as("the socat listener runs inside h1").isNotEmpty();
        String id = lab.id();
        etcd.close();
        lab.close();
        assertNothingLeftOf(id);
        for (long pid : inside) {
            assertThat(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false))
                    .as("pid %d that ran inside h1", pid).isFalse();
        }
    }

    @Test
    void aLabWhoseJvmExitsWithoutCloseIsRemovedByItsHookAndAKilledJvmsLabByTheNextLab() throws Exception {
        Process exits = child("exit");
        String exitedId = readId("exit");
        assertThat(exits.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertNothingLeftOf(exitedId);

        Process killed = child("hang");
        String killedId = readId("hang");
        assertThat(Path.of("/run/netns", "qsup-" + killedId + "-h1")).exists();
        killed.destroyForcibly(); // SIGKILL: no hook runs
        killed.waitFor(10, TimeUnit.SECONDS);
        assertThat(Path.of("/sys/class/net", "qb" + killedId)).as("SIGKILL left its bridge").exists();
        lab = NetLab.create(1);
        assertNothingLeftOf(killedId);
    }

    @Test
    void twoLabsAtOnceGetTheirOwnNamesAndSubnets() throws Exception {
        lab = NetLab.create(1);
        try (NetLab other = NetLab.create(1)) {
            assertThat(other.id()).isNotEqualTo(lab.id());
            assertThat(other.subnet()).isNotEqualTo(lab.subnet());
            assertThat(other.namespace("h1")).isNotEqualTo(lab.namespace("h1"));
            assertThat(lab.exec("h1", Duration.ofSeconds(5), "ip", "-4", "-o", "addr", "show", "eth0").orThrow()
                    .output()).contains(lab.address("h1") + "/24");
            assertThat(other.exec("h1", Duration.ofSeconds(5), "ip", "-4", "-o", "addr", "show", "eth0").orThrow()
                    .output()).contains(other.address("h1") + "/24");
        }
    }

    /** A JVM that makes a one-host lab, prints its id, then exits without close ("exit") or waits ("hang"). */
    public static final class Child {
        public static void main(String[] args) throws Exception {
            NetLab lab = NetLab.create(1);
            System.out.println("lab " + lab.id());
            System.out.flush();
            if (args[0].equals("hang")) {
                Thread.sleep(60_000);
            }
        }
    }

    private Process child(String mode) throws IOException {
        return new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
                System.getProperty("java.class.path"), Child.class.getName(), mode)
                .redirectErrorStream(true).redirectOutput(dir.resolve("child-" + mode + ".log").toFile()).start();
    }

    private String readId(String mode) throws Exception {
        Path log = dir.resolve("child-" + mode + ".log");
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (System.nanoTime() < deadline) {
            for (String line : Files.readAllLines(log)) {
                if (line.startsWith("lab ")) {
                    return line.substring(4).strip();
                }
            }
            Thread.sleep(50);
        }
        throw new AssertionError("the child printed no lab id:\n" + Files.readString(log));
    }

    private static void assertNothingLeftOf(String id) {
        assertThat(Command.run("ip", "netns", "list").orThrow().output()).doesNotContain(id);
        assertThat(Command.run("ip", "-o", "link", "show").orThrow().output()).doesNotContain(id);
        assertThat(Path.of("/run/qsup-netlab", id)).doesNotExist();
    }

    /** "from -> to" for every host and the root namespace ("root", the bridge) to every other, probed in parallel. */
    private Map<String, Boolean> reachability() throws Exception {
        List<String> places = new ArrayList<>(lab.hosts());
        places.add("root");
        Map<String, Future<Boolean>> probes = new TreeMap<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(12)) {
            for (String from : places) {
                for (String to : places) {
                    if (!from.equals(to) && !to.equals("root")) {
                        probes.put(from + " -> " + to, pool.submit(() -> reaches(from, lab.address(to), PORT)));
                    }
                }
                if (!from.equals("root")) {
                    int etcdPort = Integer.parseInt(etcd.endpoint(0).replaceAll(".*:", ""));
                    probes.put(from + " -> etcd", pool.submit(() -> reaches(from, lab.bridgeAddress(), etcdPort)));
                }
            }
            Map<String, Boolean> out = new TreeMap<>();
            for (Map.Entry<String, Future<Boolean>> e : probes.entrySet()) {
                out.put(e.getKey(), e.getValue().get());
            }
            return out;
        }
    }

    private boolean reaches(String from, String address, int port) {
        if (from.equals("root")) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(address, port), 1000);
                return true;
            } catch (IOException e) {
                return false;
            }
        }
        return lab.exec(from, Duration.ofSeconds(5), "socat", "-u", "OPEN:/dev/null",
                "TCP:" + address + ":" + port + ",connect-timeout=1").ok();
    }

    /** etcd's /health as the host gets it, through a plain HTTP request from inside its namespace. */
    private String etcdHealthFrom(String host) {
        String hostPort = etcd.endpoint(0).substring("http://".length());
        return lab.exec(host, Duration.ofSeconds(3), "bash", "-c", "exec 3<>/dev/tcp/" + hostPort.replace(':', '/')
                + " && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3").output();
    }

    private void awaitListening() throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        for (String h : lab.hosts()) {
            while (!reaches("root", lab.address(h), PORT)) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("socat in " + h + " not listening: "
                            + Files.readString(dir.resolve("socat-" + h + ".log")));
                }
                Thread.sleep(50);
            }
        }
    }
}
